// Quick start: A invites B invites C; C buys 100; who earns what?
#include <iostream>

#include "refpay/engine.h"
#include "refpay/status.h"

int main() {
  absl::StatusOr<refpay::Policy> policy = refpay::Policy::FromJson(R"({
    "name": "two-level", "levels": [{"rate": "10%"}, {"rate": "5%"}],
    "leader": {"fixed": "2.00", "max_depth": 3}, "caps": {"order_total": "30%"}})");
  if (!policy.ok()) {
    std::cerr << policy.status().message() << "\n";
    return 1;
  }
  refpay::Engine engine(*std::move(policy));
  for (
      const char* event :
      {R"({"type":"join","member":"A","at":"2026-03-01T09:00:00+08:00"})",
       R"({"type":"join","member":"B","inviter":"A","at":"2026-03-01T09:00:00+08:00"})",
       R"({"type":"join","member":"C","inviter":"B","at":"2026-03-01T09:00:00+08:00"})",
       R"({"type":"set_role","member":"A","role":"leader","at":"2026-03-01T09:00:00+08:00"})",
       R"({"type":"order","id":"o1","buyer":"C","amount":"100","at":"2026-03-02T10:00:00+08:00"})"}) {
    if (absl::Status s = engine.ApplyJson(event); !s.ok()) {
      std::cerr << refpay::ErrorCodeOf(s) << ": " << s.message() << "\n";
    }
  }
  absl::StatusOr<std::vector<std::string>> explained = engine.Explain("o1");
  if (!explained.ok()) return 1;
  for (const std::string& line : *explained) std::cout << line << "\n";
  return 0;
}
