#include "millrace/report/html_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace millrace::report {
namespace {

// Checks that markup is well-formed XML: every element closed in order,
// attributes quoted, no stray '<' or '&'. Returns "" or the first problem.
std::string check_well_formed(const std::string& doc) {
  std::vector<std::string> open;
  size_t i = 0;
  if (doc.rfind("<!DOCTYPE html>", 0) == 0) i = doc.find('>') + 1;
  while (i < doc.size()) {
    const char c = doc[i];
    if (c == '&') {
      const size_t semi = doc.find(';', i);
      const std::string entity = doc.substr(i, semi == std::string::npos ? 8 : semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" &&
          entity != "&#39;")
        return "bad entity at " + std::to_string(i) + ": " + entity;
      i = semi + 1;
      continue;
    }
    if (c == '>') return "stray '>' at " + std::to_string(i);
    if (c != '<') {
      ++i;
      continue;
    }
    const size_t end = doc.find('>', i);
    if (end == std::string::npos) return "unclosed tag at " + std::to_string(i);
    std::string tag = doc.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside a tag at " + std::to_string(i);
    size_t quotes = 0;
    for (char q : tag) quotes += q == '"';
    if (quotes % 2) return "unbalanced quotes in <" + tag + ">";
    i = end + 1;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes <" + (open.empty() ? "" : open.back()) + ">";
      open.pop_back();
      continue;
    }
    if (tag.back() == '/') continue;  // self-closing
    open.push_back(tag.substr(0, tag.find_first_of(" \n")));
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return "";
}

TEST(HtmlReport, WellFormedSelfContainedAndHoldsTheData) {
  HtmlReport r("Fraud <demo> & more");
  r.heading("Quality");
  r.paragraph("AUC \"overall\" is 0.9123 & that's fine");
  r.table({"metric", "value"}, {{"auc", "0.9123"}, {"a < b", "x & y"}, {"short"}});
  r.line_plot("AUC per day", "day", "AUC",
              {{"auc", {0, 1, 2, 3}, {0.91, 0.8765, NAN, 0.93}},
               {"cp@100", {0, 1, 2, 3}, {0.25, 0.3, 0.35, 0.2}}});
  r.histogram("Scores", "score", {{"genuine", {0.01, 0.02, 0.02, 0.5}}, {"fraud", {0.9, 0.95}}},
              {.bins = 10, .lo = 0, .hi = 1});
  r.histogram("Latency", "us", {{"total", {10, 20, 20, 30, 1000}}}, {.bins = 5, .log_y = true});
  r.bar_chart("Decisions", "events", {{"approve", 9123}, {"challenge", 77}, {"decline", 12}});
  const std::string html = r.html();

  EXPECT_EQ(check_well_formed(html), "") << html;
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://", html.find("<body>")), html.find("http://www.w3.org/2000/svg"))
      << "nothing loaded from elsewhere";
  EXPECT_NE(html.find("<title>Fraud &lt;demo&gt; &amp; more</title>"), std::string::npos);
  EXPECT_NE(html.find("<td>a &lt; b</td><td>x &amp; y</td>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>short</td><td></td></tr>"), std::string::npos);
  // Every point, bin and bar is in the page with its values.
  EXPECT_NE(html.find("<title>auc: x=1, y=0.8765</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>cp@100: x=3, y=0.2</title>"), std::string::npos);
  EXPECT_EQ(html.find("x=2, y=nan"), std::string::npos) << "non-finite points are skipped";
  EXPECT_NE(html.find("<title>genuine: [0, 0.1) 3 of 4</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>fraud: [0.9, 1) 2 of 2</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>approve: 9123</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>decline: 12</title>"), std::string::npos);
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++svgs;
  EXPECT_EQ(svgs, 4u);

  testing::TempDir dir;
  ASSERT_TRUE(r.write(dir.file("report.html")).ok());
  std::ifstream in(dir.file("report.html"));
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), html);
  EXPECT_FALSE(r.write(dir.file("missing/report.html")).ok());
}

TEST(HtmlReport, EmptyAndConstantDataStillDraw) {
  HtmlReport r("empty");
  r.line_plot("nothing", "x", "y", {});
  r.line_plot("flat", "x", "y", {{"s", {1, 1}, {5, 5}}});
  r.histogram("no values", "v", {{"s", {}}});
  r.bar_chart("none", "n", {});
  const std::string html = r.html();
  EXPECT_EQ(check_well_formed(html), "");
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf"), std::string::npos);
  EXPECT_NE(html.find("<title>s: x=1, y=5</title>"), std::string::npos);
}

}  // namespace
}  // namespace millrace::report
