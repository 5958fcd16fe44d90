#include "commands/benchmark_chart.h"

#include <fmt/format.h>

#include <algorithm>

namespace mexport {
namespace {

// Layout, in SVG user units.
constexpr double kWidth = 830;
constexpr double kLabelRight = 120;  // strategy names end here
constexpr double kTimeLeft = 130, kTimeWidth = 280;
constexpr double kCoverageLeft = 480, kCoverageWidth = 280;
constexpr double kTop = 64, kRowHeight = 30, kBarHeight = 18;

struct Segment {
  const char* label;
  const char* color;
  int64_t Coverage::*count;
};
const Segment kSegments[] = {{"direct", "#2b6cb0", &Coverage::direct},
                             {"inferred", "#63b3ed", &Coverage::inferred},
                             {"root", "#ed8936", &Coverage::root},
                             {"untagged", "#cbd5e0", &Coverage::untagged}};

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string text(double x, double y, const std::string& content, const char* anchor = "start",
                 const char* extra = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\"{}>{}</text>\n", x, y,
                     anchor, extra, escape(content));
}

std::string rect(double x, double y, double w, double h, const char* color,
                 const std::string& tooltip) {
  return fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{}"
      "</title></rect>\n",
      x, y, std::max(w, 0.0), h, color, escape(tooltip));
}

std::string formatMs(double seconds) {
  const double ms = seconds * 1e3;
  return ms < 10 ? fmt::format("{:.2f} ms", ms) : fmt::format("{:.1f} ms", ms);
}

}  // namespace

std::string benchmarkChartSvg(const std::string& title, const std::vector<ChartRow>& rows) {
  double slowest = 0;
  for (const ChartRow& r : rows)
    if (r.ok) slowest = std::max(slowest, r.tag_max);
  // Room on the right of the longest bar for its label.
  const double seconds_per_unit = slowest > 0 ? slowest / (kTimeWidth * 0.75) : 1;
  const double legend_y = kTop + kRowHeight * static_cast<double>(rows.size()) + 16;
  const double height = legend_y + 30;

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" "
      "viewBox=\"0 0 {0:.0f} {1:.0f}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      kWidth, height);
  svg += text(kWidth / 2, 22, title, "middle", " font-size=\"15\" font-weight=\"bold\"");
  svg += text(kTimeLeft, 48, "tagging time, median (line: min to max)", "start",
              " font-weight=\"bold\"");
  svg += text(kCoverageLeft, 48, "ONNX nodes by provenance", "start", " font-weight=\"bold\"");

  for (size_t i = 0; i < rows.size(); ++i) {
    const ChartRow& r = rows[i];
    const double y = kTop + kRowHeight * static_cast<double>(i);
    const double mid = y + kBarHeight / 2;
    svg += text(kLabelRight, mid + 4, r.strategy, "end");
    if (!r.ok) {
      svg += text(kTimeLeft, mid + 4, "failed", "start", " fill=\"#c53030\"");
      continue;
    }
    const double bar = r.tag_median / seconds_per_unit;
    svg += rect(kTimeLeft, y, bar, kBarHeight, "#4a5568",
                fmt::format("{}: median {}, min {}, max {}", r.strategy, formatMs(r.tag_median),
                            formatMs(r.tag_min), formatMs(r.tag_max)));
    const double low = kTimeLeft + r.tag_min / seconds_per_unit;
    const double high = kTimeLeft + r.tag_max / seconds_per_unit;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#1a202c\"/>\n", low,
        mid, high, mid);
    svg += text(std::max(high, kTimeLeft + bar) + 6, mid + 4, formatMs(r.tag_median));

    double x = kCoverageLeft;
    const double total = static_cast<double>(std::max<int64_t>(r.coverage.total, 1));
    for (const Segment& s : kSegments) {
      const double count = static_cast<double>(r.coverage.*s.count);
      const double w = kCoverageWidth * count / total;
      if (count > 0)
        svg +=
            rect(x, y, w, kBarHeight, s.color,
                 fmt::format("{}: {} {} of {} ONNX nodes ({:.1f}%)", r.strategy,
                             r.coverage.*s.count, s.label, r.coverage.total, 100 * count / total));
      x += w;
    }
    svg += text(kCoverageLeft + kCoverageWidth + 6, mid + 4,
                fmt::format("{:.1f}%", 100 * r.coverage.taggedRatio()));
  }

  double x = kCoverageLeft;
  for (const Segment& s : kSegments) {
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n",
                       x, legend_y - 10, s.color);
    svg += text(x + 16, legend_y, s.label);
    x += 70;
  }
  svg += text(kTimeLeft, legend_y, "percentages: tagged share of ONNX nodes", "start",
              " fill=\"#4a5568\"");
  svg += "</svg>\n";
  return svg;
}

}  // namespace mexport
