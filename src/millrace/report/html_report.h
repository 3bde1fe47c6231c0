// HtmlReport: a self-contained HTML page of headings, text, tables and plots
// (line plots, histograms, bar charts) drawn as inline SVG: no script, no
// style sheet or font from elsewhere, so the file opens anywhere, offline.
//
// The markup is well-formed XML (every element closed, attributes quoted,
// text escaped), and every plotted value is in the page as text: each point
// or bar carries a <title> with its values (a tooltip in browsers), so tests
// and tools can read the data back.
//
// Usage:
//   HtmlReport r("Fraud pipeline");
//   r.heading("Quality per day");
//   r.line_plot("AUC per day", "day", "AUC", {{"auc", days, aucs}});
//   r.histogram("Scores", "score", {{"genuine", s0}, {"fraud", s1}}, {.bins = 50});
//   r.write("report.html");
// Not thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::report {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points are skipped
};

struct Sample {
  std::string name;
  std::vector<double> values;  // non-finite values are skipped
};

struct HistogramOptions {
  int bins = 40;
  double lo = 0, hi = 0;  // range; lo == hi: the data's range
  bool density = false;   // each sample's bars sum to 1 (compares samples of unequal size)
  bool log_y = false;     // log10(1 + count) heights, for long tails
};

class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  void heading(const std::string& text);
  void paragraph(const std::string& text);
  // Cells are text; a row shorter than the header is padded.
  void table(const std::vector<std::string>& header,
             const std::vector<std::vector<std::string>>& rows);
  void line_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                 const std::vector<Series>& series);
  // One histogram per sample, overlaid on common bins.
  void histogram(const std::string& title, const std::string& x_label,
                 const std::vector<Sample>& samples, const HistogramOptions& options = {});
  void bar_chart(const std::string& title, const std::string& y_label,
                 const std::vector<std::pair<std::string, double>>& bars);

  // The whole page.
  std::string html() const;
  // Writes the page (to a temporary file, then renamed).
  Status write(const std::string& path) const;

 private:
  std::string title_;
  std::string body_;
};

// Text with &, <, >, " and ' escaped for HTML and XML.
std::string escape_html(const std::string& text);

}  // namespace millrace::report
