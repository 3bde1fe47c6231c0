#include "millrace/report/html_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

namespace millrace::report {
namespace {

constexpr double kWidth = 680, kHeight = 320;
constexpr double kLeft = 64, kRight = 150, kTop = 34, kBottom = 48;  // right: the legend
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

const char* color(size_t i) {
  return kColors[i % std::size(kColors)];
}

std::string num(double v) {
  if (v == 0) return "0";
  return fmt::format("{:.6g}", v);
}

// About `n` round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int n = 5) {
  const double span = hi - lo;
  const double raw = span / n;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

// A plot area mapping data coordinates to pixels.
struct Frame {
  double x0, x1, y0, y1;
  double px(double x) const { return kLeft + (x - x0) / (x1 - x0) * (kWidth - kLeft - kRight); }
  double py(double y) const {
    return kHeight - kBottom - (y - y0) / (y1 - y0) * (kHeight - kTop - kBottom);
  }
};

void widen(double* lo, double* hi) {
  if (!(*lo < *hi)) {
    const double pad = *lo == 0 ? 1 : std::abs(*lo) * 0.1;
    *lo -= pad;
    *hi += pad;
  }
}

void open_svg(std::string& out, const std::string& title) {
  fmt::format_to(std::back_inserter(out),
                 R"(<figure><svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" )"
                 R"(viewBox="0 0 {} {}" role="img"><title>{}</title>)"
                 "\n",
                 kWidth, kHeight, kWidth, kHeight, escape_html(title));
  fmt::format_to(std::back_inserter(out),
                 R"(<text x="{}" y="20" class="title">{}</text>)"
                 "\n",
                 kLeft, escape_html(title));
}

void close_svg(std::string& out) {
  out += "</svg></figure>\n";
}

void axes(std::string& out, const Frame& f, const std::string& x_label, const std::string& y_label,
          bool x_ticks = true) {
  auto o = std::back_inserter(out);
  const double left = kLeft, right = kWidth - kRight, top = kTop, bottom = kHeight - kBottom;
  fmt::format_to(o,
                 R"(<path d="M{} {}V{}H{}" class="axis"/>)"
                 "\n",
                 left, top, bottom, right);
  for (double t : ticks(f.y0, f.y1)) {
    const double y = f.py(t);
    fmt::format_to(
        o,
        R"(<path d="M{} {}H{}" class="grid"/><text x="{}" y="{}" class="ytick">{}</text>)"
        "\n",
        left, y, right, left - 6, y + 4, num(t));
  }
  if (x_ticks)
    for (double t : ticks(f.x0, f.x1)) {
      const double x = f.px(t);
      fmt::format_to(
          o,
          R"(<path d="M{} {}v5" class="axis"/><text x="{}" y="{}" class="xtick">{}</text>)"
          "\n",
          x, bottom, x, bottom + 18, num(t));
    }
  fmt::format_to(o,
                 R"(<text x="{}" y="{}" class="xlabel">{}</text>)"
                 "\n",
                 (left + right) / 2, kHeight - 8, escape_html(x_label));
  fmt::format_to(o,
                 R"X(<text x="14" y="{}" class="ylabel" transform="rotate(-90 14 {})">{}</text>)X"
                 "\n",
                 (top + bottom) / 2, (top + bottom) / 2, escape_html(y_label));
}

void legend(std::string& out, const std::vector<std::string>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    const double y = kTop + 8 + 18 * static_cast<double>(i);
    fmt::format_to(std::back_inserter(out),
                   R"(<rect x="{}" y="{}" width="12" height="12" fill="{}"/>)"
                   R"(<text x="{}" y="{}" class="legend">{}</text>)"
                   "\n",
                   kWidth - kRight + 14, y - 10, color(i), kWidth - kRight + 32, y,
                   escape_html(names[i]));
  }
}

}  // namespace

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

void HtmlReport::heading(const std::string& text) {
  body_ += "<h2>" + escape_html(text) + "</h2>\n";
}

void HtmlReport::paragraph(const std::string& text) {
  body_ += "<p>" + escape_html(text) + "</p>\n";
}

void HtmlReport::table(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows) {
  body_ += "<table><thead><tr>";
  for (const auto& h : header) body_ += "<th>" + escape_html(h) + "</th>";
  body_ += "</tr></thead><tbody>\n";
  for (const auto& row : rows) {
    body_ += "<tr>";
    for (size_t i = 0; i < std::max(row.size(), header.size()); ++i)
      body_ += "<td>" + (i < row.size() ? escape_html(row[i]) : std::string()) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</tbody></table>\n";
}

void HtmlReport::line_plot(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series) {
  Frame f{INFINITY, -INFINITY, INFINITY, -INFINITY};
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      f.x0 = std::min(f.x0, s.x[i]);
      f.x1 = std::max(f.x1, s.x[i]);
      f.y0 = std::min(f.y0, s.y[i]);
      f.y1 = std::max(f.y1, s.y[i]);
    }
  if (!std::isfinite(f.x0)) f = {0, 1, 0, 1};
  widen(&f.x0, &f.x1);
  widen(&f.y0, &f.y1);
  const double pad = (f.y1 - f.y0) * 0.05;
  f.y0 -= pad;
  f.y1 += pad;
  open_svg(body_, title);
  axes(body_, f, x_label, y_label);
  std::vector<std::string> names;
  auto o = std::back_inserter(body_);
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    names.push_back(s.name);
    std::string points;
    std::string marks;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      const double x = f.px(s.x[i]), y = f.py(s.y[i]);
      fmt::format_to(std::back_inserter(points), "{}{:.1f},{:.1f}", points.empty() ? "" : " ", x,
                     y);
      fmt::format_to(std::back_inserter(marks),
                     R"(<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="{}"><title>{}: x={}, )"
                     R"(y={}</title></circle>)",
                     x, y, color(k), escape_html(s.name), num(s.x[i]), num(s.y[i]));
    }
    fmt::format_to(o,
                   R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>)"
                   "\n{}\n",
                   points, color(k), marks);
  }
  legend(body_, names);
  close_svg(body_);
}

void HtmlReport::histogram(const std::string& title, const std::string& x_label,
                           const std::vector<Sample>& samples, const HistogramOptions& opt) {
  double lo = opt.lo, hi = opt.hi;
  if (!(lo < hi)) {
    lo = INFINITY;
    hi = -INFINITY;
    for (const auto& s : samples)
      for (double v : s.values)
        if (std::isfinite(v)) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    widen(&lo, &hi);
  }
  const int bins = std::max(1, opt.bins);
  const double width = (hi - lo) / bins;
  std::vector<std::vector<double>> counts(samples.size(), std::vector<double>(bins, 0));
  std::vector<double> totals(samples.size(), 0);
  for (size_t k = 0; k < samples.size(); ++k)
    for (double v : samples[k].values) {
      if (!std::isfinite(v) || v < lo || v > hi) continue;
      const int b = std::min(bins - 1, static_cast<int>((v - lo) / width));
      counts[k][b] += 1;
      totals[k] += 1;
    }
  auto height = [&](size_t k, int b) {
    double c = counts[k][b];
    if (opt.density && totals[k] > 0) c /= totals[k];
    return opt.log_y ? std::log10(1 + c) : c;
  };
  double top = 0;
  for (size_t k = 0; k < samples.size(); ++k)
    for (int b = 0; b < bins; ++b) top = std::max(top, height(k, b));
  Frame f{lo, hi, 0, top > 0 ? top * 1.05 : 1};
  open_svg(body_, title);
  axes(body_, f, x_label,
       opt.log_y ? (opt.density ? "log10(1 + share)" : "log10(1 + count)")
                 : (opt.density ? "share" : "count"));
  std::vector<std::string> names;
  auto o = std::back_inserter(body_);
  for (size_t k = 0; k < samples.size(); ++k) {
    names.push_back(samples[k].name);
    for (int b = 0; b < bins; ++b) {
      if (counts[k][b] == 0) continue;
      const double a = lo + width * b;
      const double x = f.px(a), w = f.px(a + width) - x, y = f.py(height(k, b));
      fmt::format_to(o,
                     R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" )"
                     R"(fill-opacity="0.55"><title>{}: [{}, {}) {} of {}</title></rect>)"
                     "\n",
                     x, y, std::max(w, 0.5), f.py(0) - y, color(k), escape_html(samples[k].name),
                     num(a), num(a + width), num(counts[k][b]), num(totals[k]));
    }
  }
  legend(body_, names);
  close_svg(body_);
}

void HtmlReport::bar_chart(const std::string& title, const std::string& y_label,
                           const std::vector<std::pair<std::string, double>>& bars) {
  double lo = 0, hi = 0;
  for (const auto& [name, v] : bars)
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  widen(&lo, &hi);
  Frame f{0, static_cast<double>(std::max<size_t>(1, bars.size())), lo, hi + (hi - lo) * 0.1};
  open_svg(body_, title);
  axes(body_, f, "", y_label, /*x_ticks=*/false);
  auto o = std::back_inserter(body_);
  for (size_t i = 0; i < bars.size(); ++i) {
    const auto& [name, v] = bars[i];
    const double x = f.px(static_cast<double>(i) + 0.15);
    const double w = f.px(static_cast<double>(i) + 0.85) - x;
    const double value = std::isfinite(v) ? v : 0;
    const double y = f.py(std::max(value, 0.0)), y0 = f.py(std::min(value, 0.0));
    fmt::format_to(o,
                   R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}">)"
                   R"(<title>{}: {}</title></rect>)"
                   R"(<text x="{:.1f}" y="{:.1f}" class="xtick">{}</text>)"
                   R"(<text x="{:.1f}" y="{:.1f}" class="xtick">{}</text>)"
                   "\n",
                   x, y, w, y0 - y, color(0), escape_html(name), num(v), x + w / 2, y - 4, num(v),
                   x + w / 2, kHeight - kBottom + 18, escape_html(name));
  }
  close_svg(body_);
}

std::string HtmlReport::html() const {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>" +
                    escape_html(title_) + "</title>\n";
  out +=
      "<style>\n"
      "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}\n"
      "table{border-collapse:collapse;margin:1em 0}"
      "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
      "th{background:#f4f4f4}\n"
      "figure{margin:1em 0}svg{font-size:12px}.title{font-weight:bold;font-size:14px}\n"
      ".axis{stroke:#333;fill:none}.grid{stroke:#e4e4e4;fill:none}\n"
      ".ytick{text-anchor:end}.xtick{text-anchor:middle}.xlabel{text-anchor:middle}"
      ".ylabel{text-anchor:middle}\n"
      "</style></head>\n<body>\n<h1>" +
      escape_html(title_) + "</h1>\n";
  out += body_;
  out += "</body></html>\n";
  return out;
}

Status HtmlReport::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Error(tmp + ": cannot open for writing");
    out << html();
    if (!out.flush()) return Status::Error(tmp + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::Error(path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace millrace::report
