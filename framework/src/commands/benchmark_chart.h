// The SVG bar chart of `mexport benchmark --plot`: per strategy, the median
// tagging time (with its min-max range) and the ONNX nodes by provenance.
#pragma once

#include <string>
#include <vector>

#include "mexport/export_result.h"

namespace mexport {

struct ChartRow {
  std::string strategy;
  bool ok = false;  // a failed strategy gets a "failed" label instead of bars
  double tag_median = 0, tag_min = 0, tag_max = 0;  // seconds
  Coverage coverage;
};

// A self-contained SVG document.
std::string benchmarkChartSvg(const std::string& title, const std::vector<ChartRow>& rows);

}  // namespace mexport
