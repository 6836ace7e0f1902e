#include "scan/weights_only_scan.hpp"

#include <fmt/format.h>

#include <optional>

#include "pickle/machine.hpp"

namespace brine::scan {

WeightsOnlyReport scan_weights_only(std::shared_ptr<const rules::RuleSet> rules, ScanOptions options, const std::string& path,
                                    analysis::TorchVersion torch) {
  // The pickle observer sees every run, the load observer says which of them torch.load returns.
  // Runs are only valid during the callback, so each one is modelled on the spot (in a model of
  // its own) and kept or dropped once the container is known.
  struct Seen {
    std::string member;
    analysis::WeightsOnlyModel model;
  };
  std::vector<std::unique_ptr<Seen>> seen;
  std::optional<std::string> zip_data_member;
  const core::Limits limits = options.limits;
  options.on_pickle = [&](const std::string& member, core::Bytes data, const pickle::PickleRun& run) {
    auto s = std::make_unique<Seen>(Seen{member, analysis::WeightsOnlyModel(torch, limits)});
    s->model.add_run(member, data, run);
    seen.push_back(std::move(s));
  };
  options.on_load = [&](const LoadedObject& obj) {
    if (obj.kind == LoadedObject::Kind::kTorchZip && obj.root_name.empty() && !zip_data_member) zip_data_member = obj.member;
  };
  const Scanner scanner(std::move(rules), std::move(options));
  WeightsOnlyReport out;
  out.scan = scanner.scan_path(path);

  analysis::WeightsOnlyModel model(torch, limits);
  auto merge = [&](const analysis::WeightsOnlyResult& r) { model.merge(r); };
  const std::string& container = out.scan.container;
  if (container == "torch-zip" && zip_data_member && zip_data_member->find('!') == std::string::npos) {
    for (const auto& s : seen) {
      if (s->member == *zip_data_member) merge(s->model.result());
    }
  } else if (container == "torch-legacy") {
    // _legacy_load unpickles magic number, protocol version, sys_info, the object and the storage
    // keys, all with the weights_only unpickler: the file's top-level pickles.
    for (const auto& s : seen) {
      if (s->member.empty()) merge(s->model.result());
    }
  } else if (container == "torchscript-zip") {
    if (torch == analysis::TorchVersion::k2) {
      model.refuse("", 0, "a TorchScript archive: torch 2.x's torch.load refuses weights_only=True for it");
    } else {
      // 1.13 returns torch.jit.load(f): it loads, and weights_only restricts nothing in it.
      model.assume("", 0, "a TorchScript archive: torch 1.13's torch.load hands it to torch.jit.load, which weights_only "
                          "does not restrict (brine's scan judges its code and constants)");
    }
  } else {
    model.refuse("", 0, fmt::format("not a torch.save file (brine reads it as '{}'): torch.load reads only torch zip and "
                                    "legacy files", container));
  }
  if (container == "torch-zip" && !zip_data_member) {
    model.refuse("", 0, "brine found no data.pkl torch.load would read in this archive");
  }
  // The scan's own errors: what brine could not read, torch.load cannot be shown to read either.
  for (const auto& f : out.scan.findings) {
    if (f.impact == analysis::Verdict::kError) model.refuse(f.member, f.offset, "scan error: " + f.message);
  }
  out.model = model.result();
  return out;
}

}  // namespace brine::scan
