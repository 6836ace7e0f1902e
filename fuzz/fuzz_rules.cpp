// The rules loader: any text as a rule file (JSON parsing, schema checks, argument specs), then
// the built rule set resolving a few names.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rules/rule_explain.hpp"
#include "rules/rule_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace brine;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  {
    // `brine rules check`: goes on past bad entries, so it reaches more of the loader.
    rules::RuleSetBuilder checker;
    (void)checker.check_file(text, "fuzz.json");
  }
  rules::RuleSetBuilder builder;
  if (!builder.add_file(text, "fuzz.json")) return 0;
  // The same bytes as --allow specs, line by line.
  std::size_t start = 0;
  while (start < text.size()) {
    const auto nl = text.find('\n', start);
    const auto line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    (void)builder.add_allow(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  auto rules = std::move(builder).build();
  for (int protocol : {0, 2, 4}) {
    (void)rules->resolve("os", "system", protocol);
    (void)rules->resolve("torch._utils", "_rebuild_tensor_v2", protocol);
    (void)rules->resolve("__builtin__", "getattr", protocol);
    (void)rules->resolve("a.b", "c.__class__.d", protocol);
    (void)rules::explain(*rules, "torch._utils", "_rebuild_tensor_v2", protocol);
  }
  // `brine rules list`: every entry's constraints in words.
  for (const auto& a : rules->allow_entries()) (void)rules::describe_constraints(*rules, a);
  return 0;
}
