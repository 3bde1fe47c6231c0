#include "millrace/serve/http_server.h"

#include <httplib.h>

#include <charconv>

#include <fmt/format.h>

#include "millrace/core/json_writer.h"
#include "millrace/store/online_store.h"

namespace millrace {

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host_port,
                                                      const HttpHandlers& h) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos)
    return Status::Error(
        fmt::format("--serve '{}': expected HOST:PORT, e.g. 127.0.0.1:8080", host_port));
  std::string host = host_port.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(host_port.substr(colon + 1));
  } catch (...) {
    return Status::Error(fmt::format("--serve '{}': the port is not a number", host_port));
  }
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->server_ = std::make_unique<httplib::Server>();
  auto& srv = *s->server_;
  srv.Get("/v1/health", [h](const httplib::Request&, httplib::Response& res) {
    res.set_content(h.health ? h.health() : "{\"status\": \"ok\"}", "application/json");
  });
  srv.Get("/v1/metrics", [h](const httplib::Request&, httplib::Response& res) {
    res.set_content(h.metrics ? h.metrics() : "", "text/plain; version=0.0.4");
  });
  srv.Post("/v1/models/reload", [h](const httplib::Request&, httplib::Response& res) {
    if (!h.reload_models) {
      res.status = 404;
      res.set_content("{\"error\": \"this pipeline serves no model\"}", "application/json");
      return;
    }
    std::string body;
    Status st = h.reload_models(&body);
    if (!st.ok()) {
      res.status = 500;
      std::string err = "{\"error\": ";
      append_json_string(err, st.message());
      err += "}";
      res.set_content(err, "application/json");
      return;
    }
    res.set_content(body, "application/json");
  });
  srv.Get(R"(/v1/features/([^/]+)/([^/]+))",
          [h](const httplib::Request& req, httplib::Response& res) {
            auto error = [&](int status, const std::string& msg) {
              res.status = status;
              std::string err = "{\"error\": ";
              append_json_string(err, msg);
              err += "}";
              res.set_content(err, "application/json");
            };
            if (!h.features) return error(404, "this pipeline serves no features");
            TimeMs at = wall_clock_ms();
            if (req.has_param("at")) {
              const std::string a = req.get_param_value("at");
              auto r = std::from_chars(a.data(), a.data() + a.size(), at);
              if (r.ec != std::errc() || r.ptr != a.data() + a.size())
                return error(400, fmt::format("at='{}': expected epoch milliseconds", a));
            }
            std::string body;
            int status = h.features(req.matches[1].str(), req.matches[2].str(), at, &body);
            if (status != 200) return error(status, body);
            res.set_content(body, "application/json");
          });
  if (port == 0) {
    s->port_ = srv.bind_to_any_port(host);
    if (s->port_ < 0) return Status::Error(fmt::format("--serve {}: cannot listen", host_port));
  } else {
    if (!srv.bind_to_port(host, port))
      return Status::Error(
          fmt::format("--serve {}: cannot listen there (in use, or not an address of this machine)",
                      host_port));
    s->port_ = port;
  }
  HttpServer* self = s.get();
  s->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  return s;
}

HttpServer::~HttpServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace millrace
