// HttpServer: the small HTTP API of a running pipeline (`millrace run --serve
// HOST:PORT`), served from one background thread:
//   GET  /v1/health          {"status": "ok", ...} while the pipeline runs
//   GET  /v1/metrics         counters in the Prometheus text format
//   POST /v1/models/reload   reloads the served model(s) now; 200 with the
//                            versions served, 500 with the error that kept the
//                            old model
//   GET  /v1/features/{feature_set}/{key}?at=MS
//                            the feature vector of an entity as of MS (default:
//                            now), each value with its freshness
// Handlers run on the server's thread; they must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "millrace/core/status.h"
#include "millrace/core/time.h"

namespace httplib {
class Server;
}

namespace millrace {

struct HttpHandlers {
  std::function<std::string()> health;   // JSON body
  std::function<std::string()> metrics;  // Prometheus text
  // Empty Status and a JSON body on success.
  std::function<Status(std::string* body)> reload_models;
  // The feature vector as JSON; returns the HTTP status (200, or 404/400 with
  // the error message in *body).
  std::function<int(std::string_view feature_set, std::string_view key, TimeMs at,
                    std::string* body)>
      features;
};

class HttpServer {
 public:
  // Listens on "HOST:PORT" (PORT 0 picks a free one; see port()).
  static Result<std::unique_ptr<HttpServer>> Start(const std::string& host_port,
                                                   const HttpHandlers& handlers);
  ~HttpServer();  // stops and joins the thread
  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace millrace
