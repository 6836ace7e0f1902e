// `brine scan --emit-safe-globals`: scans one file and runs the weights_only model
// (analysis/weights_only.hpp) over the pickles torch.load(f, weights_only=True) would read —
// data.pkl of a torch zip, or every pickle of a legacy torch file — as the scan read them.
#pragma once

#include <string>

#include "analysis/weights_only.hpp"
#include "scan/scanner.hpp"

namespace brine::scan {

struct WeightsOnlyReport {
  FileReport scan;                    ///< the ordinary scan of the file
  analysis::WeightsOnlyResult model;  ///< what weights_only=True needs or refuses
};

WeightsOnlyReport scan_weights_only(std::shared_ptr<const rules::RuleSet> rules, ScanOptions options, const std::string& path,
                                    analysis::TorchVersion torch);

}  // namespace brine::scan
