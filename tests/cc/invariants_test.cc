// Property tests: random event streams under random policies must keep the
// ledger's invariants (docs/reliability.md lists them). REFPAY_STREAMS in the
// environment raises the number of streams for a long run.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "refpay/engine.h"
#include "status_matchers.h"

namespace refpay {
namespace {

using ::refpay::testing::IsOk;

constexpr const char* kPolicies[] = {
    R"({"levels": [{"rate": "10%"}, {"rate": "5%"}], "caps": {"order_total": "12%"}})",
    R"({"levels": [{"fixed": "50"}, {"fixed": "50"}], "caps": {"order_total": "30%", "budget": "2000"},
        "settlement": {"hold_days": 2}, "binding": {"mode": "free"}})",
    R"({"levels": [{"tiers": [{"below": "300", "rate": "4%"}, {"from": "300", "below": "500", "rate": "5%"},
                              {"from": "500", "fixed": "40"}]}],
        "leader": {"rate": "3%", "peer": {"rate": "10%"}, "include_self": true},
        "caps": {"member_month": "300"}, "rounding": "half_even",
        "checks": {"shared_identity": "deny", "split_orders": {"max_orders": 2, "window_minutes": 30}}})",
    R"({"levels": [{"rate": "7.5%", "by_rank": {"gold": {"rate": "9%"}}}, {"rate": "2.5%"}],
        "eligible": {"role": "distributor", "compress": true}, "self_purchase": true,
        "leader": {"scheme": "differential", "max_depth": 6, "peer": {"rate": "5%"},
                   "ranks": [{"name": "silver", "rate": "2%"}, {"name": "gold", "rate": "4%"}]},
        "caps": {"order_total": "20%", "member_month": "150", "budget": "5000"}, "rounding": "down",
        "promotions": [{"grant": "gold", "when": {"referred_buyers": 2}},
                       {"grant": "distributor", "when": {"own_spend": "200"}}],
        "rank_bonus": {"gold": {"fixed": "3"}},
        "checks": {"refund_rate": {"min_orders": 2, "max_share": "40%", "action": "flag"}},
        "settlement": {"hold_days": 1}, "binding": {"mode": "protected", "protection_days": 2}})",
    R"({"levels": [{"rate": "20%"}], "by_category": {"course": {"levels": [{"fixed": "20"}],
        "leader": {"fixed": "10", "max_depth": 3}}},
        "invite_rewards": {"steps": [{"at": 2, "reward": "5"}, {"at": 4, "reward": "8"}],
                           "valid": {"same_region": true}, "max_rewards": 6},
        "checks": {"velocity": {"max_invites": 3, "window_hours": 2, "action": "deny"}},
        "caps": {"member_month": "100"}})",
    R"({"timezone": "America/New_York",
        "levels": [{"mode": "marginal", "tiers": [{"upto": "200", "rate": "3.3333%"},
                    {"above": "200", "below": "600", "rate": "6.5%"}, {"from": "600", "rate": "11%"}]},
                   {"rate": "1.25%"}],
        "leader": {"rate": "2%", "peer": {"rate": "33.3333%"}, "max_depth": 4},
        "caps": {"order_total": "15%", "member_month": "80", "budget": "3000"},
        "invite_rewards": {"steps": [{"at": 1, "reward": "2"}, {"at": 3, "reward": "4"}],
                           "valid": {"requires_purchase": true}},
        "settlement": {"hold_days": 3}, "binding": {"mode": "free"}})",
    R"({"rounding": "half_even", "self_purchase": true,
        "levels": [{"tiers": [{"upto": "99.99", "fixed": "1.5"}, {"above": "99.99", "upto": "500", "rate": "4.5%"},
                              {"above": "500", "rate": "0.0625"}],
                    "by_rank": {"gold": {"rate": "8.75%"}}},
                   {"fixed": "3"}],
        "leader": {"fixed": "5", "include_self": true, "max_depth": 2},
        "rank_bonus": {"gold": {"fixed": "2.5"}, "leader": {"rate": "1%"}},
        "caps": {"order_total": "25%", "budget": "1500"},
        "checks": {"shared_identity": {"action": "flag"},
                   "split_orders": {"max_orders": 1, "window_minutes": 60, "action": "deny"}}})",
};

// A random policy from the SPEC §3 building blocks, valid by construction:
// every amount rule kind, tiers of both modes and bound styles, both leader
// schemes, eligibility, caps, checks, promotions, rank bonuses and invite
// rewards. Stream s uses it when s % 4 == 3.
std::string RandomPolicy(std::mt19937_64& random) {
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<uint64_t>(n)); };
  auto rate = [&](int max_percent) {
    // Up to four decimals of percent, or a fraction.
    const int ppm = pick(max_percent * 10000 + 1);
    if (pick(4) == 0) return absl::StrCat("0.", absl::StrCat(1000000 + ppm).substr(1));
    return absl::StrCat(ppm / 10000, ".", absl::StrCat(10000 + ppm % 10000).substr(1), "%");
  };
  auto money = [&](int max_yuan) {
    return absl::StrCat(pick(max_yuan + 1), ".", pick(100) / 10, pick(10));
  };
  auto rule = [&](bool allow_tiers) -> std::string {
    const int kind = pick(allow_tiers ? 4 : 2);
    if (kind == 0) return absl::StrCat(R"({"fixed": ")", money(40), "\"}");
    if (kind == 1) return absl::StrCat(R"({"rate": ")", rate(20), "\"}");
    const bool marginal = kind == 3;
    std::string out =
        absl::StrCat(R"({"mode": ")", marginal ? "marginal" : "whole", R"(", "tiers": [)");
    std::string lower;  // the bound the next tier starts with
    int bound = 0;
    const int n = 2 + pick(3);
    for (int i = 0; i < n; ++i) {
      std::string tier = "{";
      if (i > 0) absl::StrAppend(&tier, lower, ", ");
      if (i + 1 < n) {
        bound += 1 + pick(600);
        const std::string at = absl::StrCat(bound, pick(2) == 0 ? "" : ".50");
        const bool inclusive = pick(2) == 0;
        absl::StrAppend(&tier, "\"", inclusive ? "upto" : "below", "\": \"", at, "\", ");
        lower = absl::StrCat("\"", inclusive ? "above" : "from", "\": \"", at, "\"");
      }
      if (!marginal && pick(3) == 0) {
        absl::StrAppend(&tier, R"("fixed": ")", money(30), "\"}");
      } else {
        absl::StrAppend(&tier, R"("rate": ")", rate(20), "\"}");
      }
      absl::StrAppend(&out, i > 0 ? ", " : "", tier);
    }
    return out + "]}";
  };
  const bool differential = pick(3) == 0;
  std::vector<std::string> parts;
  const char* roundings[] = {"half_up", "half_even", "down"};
  const char* zones[] = {"Asia/Shanghai", "America/New_York", "UTC", "Asia/Kolkata"};
  parts.push_back(absl::StrCat(R"("rounding": ")", roundings[pick(3)], R"(", "timezone": ")",
                               zones[pick(4)], "\""));
  if (pick(4) == 0) parts.push_back(R"("self_purchase": true)");
  std::string levels = R"("levels": [)";
  for (int i = 0, n = 1 + pick(3); i < n; ++i) {
    std::string level = rule(true);
    if (pick(4) == 0) {
      level.pop_back();
      absl::StrAppend(&level, R"(, "by_rank": {"gold": )", rule(false), "}}");
    }
    absl::StrAppend(&levels, i > 0 ? ", " : "", level);
  }
  parts.push_back(levels + "]");
  if (pick(4) == 0) {
    parts.push_back(absl::StrCat(R"("eligible": {"role": "distributor", "compress": )",
                                 pick(2) == 0 ? "true" : "false", "}"));
  }
  if (differential) {
    const int low = 1 + pick(5), high = low + 1 + pick(5);
    parts.push_back(absl::StrCat(
        R"("leader": {"scheme": "differential", "ranks": [{"name": "silver", "rate": ")", low,
        R"(%"}, {"name": "gold", "rate": ")", high, R"(%"}])",
        pick(2) == 0 ? R"(, "include_self": true)" : "",
        pick(2) == 0 ? absl::StrCat(R"(, "max_depth": )", 1 + pick(6)) : "",
        pick(2) == 0 ? absl::StrCat(R"(, "peer": {"rate": ")", rate(50), R"("})") : "", "}"));
  } else if (pick(3) != 0) {
    std::string leader = rule(true);
    leader.pop_back();
    absl::StrAppend(&leader, pick(2) == 0 ? R"(, "include_self": true)" : "",
                    pick(2) == 0 ? absl::StrCat(R"(, "max_depth": )", 1 + pick(6)) : "",
                    pick(2) == 0 ? absl::StrCat(R"(, "peer": {"rate": ")", rate(50), R"("})") : "",
                    "}");
    parts.push_back(absl::StrCat(R"("leader": )", leader));
  }
  if (pick(3) == 0) {
    parts.push_back(absl::StrCat(R"("by_category": {"course": {"levels": [)", rule(true), "]}}"));
  }
  std::vector<std::string> caps;
  if (pick(2) == 0) caps.push_back(absl::StrCat(R"("order_total": ")", rate(40), "\""));
  if (pick(2) == 0) caps.push_back(absl::StrCat(R"("member_month": ")", money(300), "\""));
  if (pick(3) == 0) caps.push_back(absl::StrCat(R"("budget": ")", money(5000), "\""));
  if (!caps.empty()) parts.push_back(absl::StrCat(R"("caps": {)", absl::StrJoin(caps, ", "), "}"));
  if (pick(3) == 0) parts.push_back(absl::StrCat(R"("rank_bonus": {"gold": )", rule(false), "}"));
  if (pick(3) == 0) {
    parts.push_back(absl::StrCat(R"("promotions": [{"grant": "gold", "when": {"referred_orders": )",
                                 1 + pick(4), pick(2) == 0 ? R"(, "window_days": 3)" : "",
                                 R"(}}, {"grant": "distributor", "when": {"own_spend": ")",
                                 money(500), R"("}}])"));
  }
  if (pick(3) == 0) {
    parts.push_back(
        absl::StrCat(R"("invite_rewards": {"steps": [{"at": 1, "reward": ")", money(5),
                     R"("}, {"at": )", 2 + pick(3), R"(, "reward": ")", money(10),
                     R"("}], "valid": {"same_region": )", pick(2) == 0 ? "true" : "false",
                     R"(, "requires_purchase": )", pick(2) == 0 ? "true" : "false", "}",
                     pick(2) == 0 ? absl::StrCat(R"(, "max_rewards": )", pick(8)) : "", "}"));
  }
  const char* actions[] = {"flag", "hold", "deny"};
  std::vector<std::string> checks;
  checks.push_back(
      pick(3) == 0 ? R"("shared_identity": "off")"
                   : absl::StrCat(R"("shared_identity": {"action": ")", actions[pick(3)], R"("})"));
  if (pick(3) == 0) {
    checks.push_back(absl::StrCat(R"("split_orders": {"max_orders": )", 1 + pick(3),
                                  R"(, "window_minutes": )", 10 + pick(300), R"(, "action": ")",
                                  actions[pick(3)], R"("})"));
  }
  if (pick(3) == 0) {
    checks.push_back(absl::StrCat(R"("velocity": {"max_invites": )", 1 + pick(4),
                                  R"(, "window_hours": )", 1 + pick(48), R"(, "action": ")",
                                  actions[pick(3)], R"("})"));
  }
  if (pick(3) == 0) {
    checks.push_back(absl::StrCat(R"("refund_rate": {"min_orders": )", 1 + pick(3),
                                  R"(, "max_share": ")", rate(60), R"(", "action": ")",
                                  actions[pick(3)], R"("})"));
  }
  parts.push_back(absl::StrCat(R"("checks": {)", absl::StrJoin(checks, ", "), "}"));
  if (pick(2) == 0) parts.push_back(absl::StrCat(R"("settlement": {"hold_days": )", pick(4), "}"));
  const char* bindings[] = {R"({"mode": "free"})", R"({"mode": "permanent"})",
                            R"({"mode": "protected", "protection_days": 1})"};
  parts.push_back(absl::StrCat(R"("binding": )", bindings[pick(3)]));
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

// A random but reproducible stream of JSON events, some of them bad.
std::vector<std::string> RandomStream(std::mt19937_64& random, int events) {
  std::vector<std::string> out;
  int members = 0, orders = 0;
  int64_t t = 1'772'326'800;  // 2026-03-01T09:00:00+08:00
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<uint64_t>(n)); };
  auto at = [&] {
    t += pick(4) == 0 ? 0 : pick(20000);
    return absl::StrCat(R"("at":")",
                        FormatTimestamp(absl::FromUnixSeconds(t), absl::FixedTimeZone(8 * 3600)),
                        "\"");
  };
  const char* roles[] = {"leader", "silver", "gold", "distributor"};
  for (int i = 0; i < events; ++i) {
    const int kind = members < 3 ? 0 : pick(20);
    if (kind <= 4) {
      std::string e = absl::StrCat(R"({"type":"join","member":"m)", members, "\"");
      if (members > 0 && pick(8) != 0) absl::StrAppend(&e, R"(,"inviter":"m)", pick(members), "\"");
      if (pick(3) == 0) absl::StrAppend(&e, R"(,"phone":"p)", pick(5), "\"");
      absl::StrAppend(&e, R"(,"region":"r)", pick(2), "\",", at(), "}");
      out.push_back(e);
      ++members;
    } else if (kind <= 6) {
      out.push_back(absl::StrCat(R"({"type":")", pick(4) == 0 ? "unset_role" : "set_role",
                                 R"(","member":"m)", pick(members), R"(","role":")", roles[pick(4)],
                                 "\",", at(), "}"));
    } else if (kind == 7) {
      out.push_back(absl::StrCat(R"({"type":"rebind","member":"m)", pick(members),
                                 R"(","inviter":"m)", pick(members), "\",", at(), "}"));
    } else if (kind <= 13) {
      out.push_back(absl::StrCat(R"({"type":"order","id":"o)", orders, R"(","buyer":"m)",
                                 pick(members), R"(","amount":")", 1 + pick(90000) / 100, ".",
                                 10 + pick(90), "\"", pick(3) == 0 ? R"(,"category":"course")" : "",
                                 ",", at(), "}"));
      ++orders;
    } else if (kind <= 15 && orders > 0) {
      out.push_back(
          absl::StrCat(R"({"type":"confirm","order":"o)", pick(orders), "\",", at(), "}"));
    } else if (kind <= 17 && orders > 0) {
      const std::string amount =
          pick(2) == 0 ? "" : absl::StrCat(R"(,"amount":")", 1 + pick(300), "\"");
      out.push_back(absl::StrCat(R"({"type":"refund","order":"o)", pick(orders), "\"", amount, ",",
                                 at(), "}"));
    } else if (kind == 18) {
      // Deliberately bad: unknown ids, out of order, malformed amounts.
      const char* bad[] = {
          R"({"type":"order","id":"x","buyer":"nobody","amount":"5","at":"2026-03-01T09:00:00+08:00"})",
          R"({"type":"order","id":"o0","buyer":"m0","amount":"5","at":"2030-01-01T00:00:00+08:00"})",
          R"({"type":"refund","order":"o0","amount":"0.001","at":"2030-01-01T00:00:00+08:00"})",
          R"({"type":"join","member":"m0","at":"2030-01-01T00:00:00+08:00"})"};
      out.push_back(bad[pick(4)]);
    } else if (!out.empty()) {
      // A re-delivery of an earlier line: duplicate_event if it carried an
      // applied event_id, else judged again as it stands.
      out.push_back(out[pick(static_cast<int>(out.size()))]);
      continue;
    }
    if (!out.empty() && pick(5) == 0 && kind != 18) {
      // Some events carry an event_id; now and then one already used for
      // other content (conflicting_event).
      std::string& e = out.back();
      e.insert(e.size() - 1,
               absl::StrCat(R"(,"event_id":"e)", pick(4) == 0 ? pick(i + 1) : i, "\""));
    }
  }
  return out;
}

std::string Fingerprint(const Engine& engine, absl::Time as_of) {
  const std::vector<LedgerRow> rows = *engine.Ledger(as_of);
  std::string out =
      absl::StrCat(engine.member_count(), "/", engine.order_count(), "/", engine.Flags().size());
  for (const LedgerRow& row : rows) {
    absl::StrAppend(&out, "|", row.order.value_or("-"), row.member, row.kind, row.amount.ToString(),
                    EntryStatusName(row.status), row.explanation);
  }
  for (const Flag& flag : engine.Flags()) {
    absl::StrAppend(&out, "|", flag.check, ":", flag.member, ":", flag.order.value_or("-"));
  }
  return out;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)  // clang
#define REFPAY_HAS_ASAN 1
#endif
#endif
#ifndef REFPAY_HAS_ASAN
#define REFPAY_HAS_ASAN 0
#endif

// REFPAY_STREAM_EVENTS raises the longest stream (default 180; streams are
// a third to all of it long): deeper trees, more months, more refunds.
int StreamEvents() {
  const char* env = std::getenv("REFPAY_STREAM_EVENTS");
  return env != nullptr && std::atoi(env) >= 3 ? std::atoi(env) : 180;
}

int Streams() {
  if (const char* env = std::getenv("REFPAY_STREAMS"); env != nullptr) return std::atoi(env);
    // Thousands in the normal suite; fewer under the sanitizers, which run the
    // same checks about ten times slower.
#if defined(__SANITIZE_ADDRESS__) || REFPAY_HAS_ASAN
  return 100;
#else
  return 2000;
#endif
}

// ---- Explanations, re-checked with integers of our own. ------------------

using Wide = Int128;  // checked: an overflow throws

// Reads a decimal like "249.9995" or "-5.00" as a whole number of 10^-scale
// units; fails on more than `scale` decimals or anything but digits.
bool ParseScaled(std::string_view text, int scale, Wide* out) {
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty()) return false;
  Wide value = 0;
  int decimals = -1;
  for (char c : text) {
    if (c == '.' && decimals < 0) {
      decimals = 0;
      continue;
    }
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
    if (decimals >= 0 && ++decimals > scale) return false;
  }
  for (int d = decimals < 0 ? 0 : decimals; d < scale; ++d) value *= 10;
  *out = negative ? -value : value;
  return true;
}

bool ParseFen(std::string_view text, int64_t* fen) {
  Wide value = 0;
  if (!ParseScaled(text, 2, &value)) return false;
  *fen = static_cast<int64_t>(value);
  return true;
}

// "12.5%" or "0.0625" as parts per million.
bool ParsePpm(std::string_view text, int64_t* ppm) {
  Wide value = 0;
  const bool percent = !text.empty() && text.back() == '%';
  if (percent) text.remove_suffix(1);
  if (!ParseScaled(text, percent ? 4 : 6, &value)) return false;
  *ppm = static_cast<int64_t>(value);
  return true;
}

// An exact amount in 10^-8 yuan (fen × ppm) rounded to fen, written out
// from the rounding table of refpay/money.h rather than taken from it.
int64_t RoundToFen(Wide exact, std::string_view mode) {
  constexpr Wide kUnit = 1'000'000;
  const bool negative = exact < 0;
  const Wide magnitude = negative ? -exact : exact;
  Wide q = magnitude / kUnit;
  const Wide r = magnitude % kUnit;
  if (mode == "half_up") {
    if (2 * r >= kUnit) ++q;
  } else if (mode == "half_even") {
    if (2 * r > kUnit || (2 * r == kUnit && q % 2 == 1)) ++q;
  }  // "down": truncate
  return static_cast<int64_t>(negative ? -q : q);
}

std::vector<std::string_view> SplitOn(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> parts;
  for (size_t at; (at = text.find(separator)) != std::string_view::npos;) {
    parts.push_back(text.substr(0, at));
    text.remove_prefix(at + separator.size());
  }
  parts.push_back(text);
  return parts;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Checks that `base` lies in a tier written as "(from A below B)".
::testing::AssertionResult InTier(std::string_view explanation, int64_t base) {
  const size_t open = explanation.find(" (");
  const size_t close = explanation.find(')', open);
  if (open == std::string_view::npos || close == std::string_view::npos) {
    return ::testing::AssertionFailure() << "no tier bounds";
  }
  const std::string_view bounds = explanation.substr(open + 2, close - open - 2);
  if (bounds == "all amounts") return ::testing::AssertionSuccess();
  const std::vector<std::string_view> words = SplitOn(bounds, " ");
  if (words.size() % 2 != 0) return ::testing::AssertionFailure() << "tier bounds " << bounds;
  for (size_t i = 0; i < words.size(); i += 2) {
    int64_t bound = 0;
    if (!ParseFen(words[i + 1], &bound)) return ::testing::AssertionFailure() << bounds;
    const bool ok = words[i] == "from"    ? base >= bound
                    : words[i] == "above" ? base > bound
                    : words[i] == "below" ? base < bound
                    : words[i] == "upto"  ? base <= bound
                                          : false;
    if (!ok) {
      return ::testing::AssertionFailure()
             << "base " << Money::FromFen(base).ToString() << " outside tier " << bounds;
    }
  }
  return ::testing::AssertionSuccess();
}

// Re-does the arithmetic of one rule explanation (AmountRule::Explain or a
// peer bonus) on `base`, and sets `*raw` to the amount it states.
::testing::AssertionResult CheckRule(std::string_view text, int64_t base, std::string_view mode,
                                     int64_t leader_raw, int64_t* raw) {
  auto fail = [&] { return ::testing::AssertionFailure() << "in \"" << text << "\": "; };
  const size_t equals = text.find(" = ");
  if (equals == std::string_view::npos) {
    // "PATH fixed 20.00" or "PATH.tiers[2] (from 500.00) fixed 40.00".
    const size_t fixed = text.rfind(" fixed ");
    if (fixed == std::string_view::npos || !ParseFen(text.substr(fixed + 7), raw)) {
      return fail() << "neither arithmetic nor a fixed amount";
    }
    if (text.find(".tiers[") != std::string_view::npos) return InTier(text, base);
    return ::testing::AssertionSuccess();
  }
  // "... = EXACT → ROUNDED MODE"
  const std::vector<std::string_view> result = SplitOn(text.substr(equals + 3), " ");
  Wide exact = 0;
  if (result.size() != 4 || result[1] != "→" || !ParseScaled(result[0], 8, &exact) ||
      !ParseFen(result[2], raw)) {
    return fail() << "result not EXACT → ROUNDED MODE";
  }
  if (result[3] != mode) return fail() << "rounding " << result[3] << ", policy " << mode;
  if (RoundToFen(exact, mode) != *raw) {
    return fail() << result[0] << " rounds " << mode << " to fen "
                  << Money::FromFen(RoundToFen(exact, mode)).ToString();
  }
  const std::string_view left = text.substr(0, equals);
  Wide product = 0;
  if (const size_t marginal = left.find(" marginal "); marginal != std::string_view::npos) {
    // "PATH marginal 4% × 300.00 + 5% × 200.00": slices add up to the base.
    int64_t slices = 0;
    // On a base of 0 there are no slices ("PATH marginal  = 0.00 → …").
    const std::string_view terms = left.substr(marginal + 10);
    for (std::string_view term :
         terms.empty() ? std::vector<std::string_view>() : SplitOn(terms, " + ")) {
      const std::vector<std::string_view> factors = SplitOn(term, " × ");
      int64_t ppm = 0, slice = 0;
      if (factors.size() != 2 || !ParsePpm(factors[0], &ppm) || !ParseFen(factors[1], &slice)) {
        return fail() << "slice \"" << term << "\"";
      }
      product += Wide(ppm) * slice;
      slices += slice;
    }
    if (slices != base) return fail() << "slices add up to " << Money::FromFen(slices).ToString();
  } else {
    // "PATH RATE × BASE" or "PATH RATE × leader bonus L".
    const size_t times = left.rfind(" × ");
    const size_t rate_at = left.rfind(' ', times - 1);
    int64_t ppm = 0, factor = 0;
    std::string_view operand = left.substr(times + 4);
    const bool peer = StartsWith(operand, "leader bonus ");
    if (peer) operand.remove_prefix(13);
    if (times == std::string_view::npos || rate_at == std::string_view::npos ||
        !ParsePpm(left.substr(rate_at + 1, times - rate_at - 1), &ppm) ||
        !ParseFen(operand, &factor)) {
      return fail() << "not RATE × AMOUNT";
    }
    if (factor != (peer ? leader_raw : base)) {
      return fail() << (peer ? "leader bonus " : "base ") << Money::FromFen(factor).ToString()
                    << ", expected " << Money::FromFen(peer ? leader_raw : base).ToString();
    }
    product = Wide(ppm) * factor;
    if (!peer && left.find(".tiers[") != std::string_view::npos) {
      if (auto in = InTier(left, base); !in) return in;
    }
  }
  if (product != exact) return fail() << "the product is not " << result[0];
  return ::testing::AssertionSuccess();
}

struct OrderFacts {
  int64_t amount = 0;
  int64_t refunded = 0;
  absl::Time at;
  std::optional<absl::Time> confirmed;  // the first confirm
  // Accepted refunds: time, and whether the order's entries (those not held)
  // were available then, given the events before it (a confirm at the same
  // instant but later in the stream does not count).
  std::vector<std::pair<absl::Time, bool>> refunds;

  // Whether an entry of this order not held by a check is available at `t`.
  bool AvailableAt(absl::Time t, absl::Duration hold) const {
    return confirmed && *confirmed <= t && t - *confirmed >= hold;
  }
};

struct ExplanationStats {
  int64_t rules = 0, refunds = 0, cuts = 0, denied = 0, clawbacks = 0;
};

// Every ledger row's explanation reproduces its amount: the rule's
// arithmetic, then checks, caps and refunds in the order they applied.
::testing::AssertionResult CheckExplanations(const Engine& engine,
                                             const std::vector<LedgerRow>& rows,
                                             const LedgerColumns& table,
                                             const std::map<std::string, OrderFacts>& orders,
                                             ExplanationStats* stats) {
  const std::string_view mode = RoundingModeName(engine.policy().rounding);
  const std::vector<Flag> flags = engine.Flags();
  auto flagged = [&](std::string_view check, const LedgerRow& row) {
    return std::any_of(flags.begin(), flags.end(), [&](const Flag& f) {
      return f.check == check && f.member == row.member && f.order == row.order;
    });
  };
  // Clawed back per (order, member, kind), from the clawback rows.
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> clawed;
  // The first leader entry's raw amount per order, for its peer bonus.
  std::map<std::string, int64_t> leader_raw;
  std::set<std::string> order_total_reached;
  // A check hit is reported once per distinct (check, member, order); a cap
  // flag once per entry the cap reduced (counted from the explanations).
  using FlagKey = std::tuple<std::string, std::string, std::string>;
  auto key_of = [](std::string_view check, const std::string& member,
                   const std::optional<std::string>& order) {
    return FlagKey(check, member, order.value_or("(none)"));
  };
  std::set<FlagKey> distinct;
  std::map<FlagKey, int> cap_flags, cap_cuts;
  for (const Flag& f : flags) {
    if (f.check == "cap_order" || f.check == "cap_member" || f.check == "budget_exhausted") {
      ++cap_flags[key_of(f.check, f.member, f.order)];
    } else if (!distinct.insert(key_of(f.check, f.member, f.order)).second) {
      return ::testing::AssertionFailure()
             << "flag " << f.check << " " << f.member << " " << f.order.value_or("") << " twice";
    }
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const LedgerRow& row = rows[i];
    if (row.clawback) {
      // A refund claws back only what was available at its time (SPEC §4).
      const auto& refunds = orders.at(*row.order).refunds;
      if (std::none_of(refunds.begin(), refunds.end(), [&](const auto& refund) {
            return refund.first == row.at && refund.second;
          })) {
        return ::testing::AssertionFailure()
               << "clawback of an entry not yet available: " << *row.order << " " << row.member
               << " " << row.kind;
      }
      clawed[{*row.order, row.member, row.kind}] -= row.amount.fen();
      if (!row.amount.is_negative() ||
          row.explanation != absl::StrCat("clawback of ",
                                          Money::FromFen(-row.amount.fen()).ToString(),
                                          " after a refund of an available entry (追回)")) {
        return ::testing::AssertionFailure() << "clawback row: " << row.explanation;
      }
      ++stats->clawbacks;
    } else if (row.kind == "leader" && row.order && !leader_raw.contains(*row.order)) {
      leader_raw[*row.order] = table.rule_amount[i];
    }
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const LedgerRow& row = rows[i];
    if (row.clawback) continue;
    auto fail = [&] {
      return ::testing::AssertionFailure() << "row " << i << " \"" << row.explanation << "\": ";
    };
    const std::string head = absl::StrCat(row.kind, " to ", row.member, ": ");
    if (!StartsWith(row.explanation, head)) return fail() << "does not start with " << head;
    const std::vector<std::string_view> parts =
        SplitOn(std::string_view(row.explanation).substr(head.size()), "; ");
    const OrderFacts* order = nullptr;
    if (row.order) {
      auto it = orders.find(*row.order);
      if (it == orders.end()) return fail() << "unknown order";
      order = &it->second;
    }
    const int64_t amount = order ? order->amount : 0;
    const int64_t leader =
        row.order && leader_raw.contains(*row.order) ? leader_raw[*row.order] : 0;
    int64_t raw = 0;
    if (auto ok = CheckRule(parts[0], amount, mode, leader, &raw); !ok)
      return fail() << ok.message();
    if (raw != table.rule_amount[i]) return fail() << "rule amount is " << table.rule_amount[i];
    ++stats->rules;
    int64_t paid = raw;
    bool denied = false, order_cut = false;
    size_t part = 1;
    if (part < parts.size() && parts[part].find(" by ") != std::string_view::npos &&
        !StartsWith(parts[part], "cut to ") && !StartsWith(parts[part], "after refunds")) {
      // "deny by split_orders, shared_identity": the strongest action.
      const std::string_view action = parts[part].substr(0, parts[part].find(' '));
      if (!row.action || action != ActionName(*row.action)) return fail() << "action";
      denied = action == "deny";
      if (denied) paid = 0, ++stats->denied;
      if (action == "hold" && row.status != EntryStatus::kHeld) return fail() << "hold not held";
      // Each check named was reported for this member and order (a
      // velocity hit is reported once per member, with no order).
      const std::string_view names = parts[part].substr(parts[part].find(" by ") + 4);
      for (std::string_view check : SplitOn(names, ", ")) {
        if (row.order && !flagged(check, row)) return fail() << "no " << check << " flag";
      }
      ++part;
    } else if (row.action) {
      return fail() << "action " << ActionName(*row.action) << " not explained";
    }
    if (part < parts.size() && StartsWith(parts[part], "cut to ")) {
      // "cut to 3.50 by caps.order_total 12%, caps.budget 2000.00"
      const std::string_view cut = parts[part].substr(7);
      const size_t by = cut.find(" by ");
      int64_t to = 0;
      if (by == std::string_view::npos || !ParseFen(cut.substr(0, by), &to) || to < 0 ||
          to >= paid) {
        return fail() << "a cut must lower the amount";
      }
      if (denied) return fail() << "a denied entry takes no cap room";
      for (std::string_view cap : SplitOn(cut.substr(by + 4), ", ")) {
        if (StartsWith(cap, "caps.order_total ")) order_cut = true;
        ++cap_cuts[key_of(StartsWith(cap, "caps.order_total ")    ? "cap_order"
                          : StartsWith(cap, "caps.member_month ") ? "cap_member"
                                                                  : "budget_exhausted",
                          row.member, row.order)];
        const char* check = StartsWith(cap, "caps.order_total ")    ? "cap_order"
                            : StartsWith(cap, "caps.member_month ") ? "cap_member"
                                                                    : "budget_exhausted";
        if (!flagged(check, row)) return fail() << "no " << check << " flag";
      }
      paid = to;
      ++stats->cuts;
      ++part;
    }
    // order_total fills the entries in priority order (their row order):
    // the one that crosses the cap is cut to what is left, the rest get 0.
    if (row.order && order_total_reached.contains(*row.order) && paid != 0) {
      return fail() << "paid after the order_total cap was reached";
    }
    if (order_cut) order_total_reached.insert(*row.order);
    int64_t net = row.amount.fen();
    if (part < parts.size()) {
      // "after refunds of 30.00 (base 70.00) RULE: entry 7.00, clawed back 1.00"
      static constexpr std::string_view kRefunds = "after refunds of ";
      std::string_view text = parts[part];
      const size_t base_at = text.find(" (base ");
      const size_t close = text.find(") ", base_at);
      const size_t entry_at = text.rfind(": entry ");
      int64_t refunded = 0, base = 0, entry = 0, clawed_back = 0;
      if (!order || !StartsWith(text, kRefunds) || base_at == std::string_view::npos ||
          close == std::string_view::npos || entry_at == std::string_view::npos ||
          !ParseFen(text.substr(kRefunds.size(), base_at - kRefunds.size()), &refunded) ||
          !ParseFen(text.substr(base_at + 7, close - base_at - 7), &base)) {
        return fail() << "refund part";
      }
      std::string_view tail = text.substr(entry_at + 8);
      if (const size_t comma = tail.find(", clawed back "); comma != std::string_view::npos) {
        if (!ParseFen(tail.substr(comma + 14), &clawed_back)) return fail() << "clawed back";
        tail = tail.substr(0, comma);
      }
      if (!ParseFen(tail, &entry)) return fail() << "entry amount";
      if (refunded != order->refunded || base != order->amount - order->refunded) {
        return fail() << "refunds " << Money::FromFen(order->refunded).ToString();
      }
      if (entry != row.amount.fen()) return fail() << "entry is " << row.amount.ToString();
      const auto key = std::make_tuple(*row.order, row.member, row.kind);
      if (clawed_back != (clawed.contains(key) ? clawed[key] : 0)) {
        return fail() << "clawback rows sum to " << clawed[key];
      }
      net = entry - clawed_back;
      // The entry itself shrinks only by refunds before it was available
      // (or while held); after, the cut is a clawback.
      if (entry < paid &&
          std::none_of(order->refunds.begin(), order->refunds.end(), [&](const auto& refund) {
            return row.action == Action::kHold || !refund.second;
          })) {
        return fail() << "an available entry shrank instead of a clawback";
      }
      if (clawed_back > 0 && row.action == Action::kHold) return fail() << "held entry clawed back";
      // Each refund leaves min(what was paid, the rule on the new base).
      const std::string_view rule = text.substr(close + 2, entry_at - close - 2);
      int64_t recomputed = paid;
      if (rule != "recomputed") {
        if (auto ok = CheckRule(rule, base, mode, 0, &recomputed); !ok) {
          return fail() << ok.message();
        }
      }
      if (net < 0 || net > paid || net > (denied ? 0 : recomputed) || (base == 0 && net != 0)) {
        return fail() << "net " << Money::FromFen(net).ToString() << " after refunds";
      }
      ++stats->refunds;
      ++part;
    } else if (row.amount.fen() != paid) {
      return fail() << "amount is " << row.amount.ToString() << ", explanation says "
                    << Money::FromFen(paid).ToString();
    }
    if (part != parts.size()) return fail() << "unexpected \"" << parts[part] << "\"";
  }
  if (cap_flags != cap_cuts) {
    return ::testing::AssertionFailure()
           << "cap flags do not match the entries cut: " << cap_flags.size() << " keys flagged, "
           << cap_cuts.size() << " keys cut";
  }
  return ::testing::AssertionSuccess();
}

// Balances and Totals equal the ledger's sums per member and status.
::testing::AssertionResult CheckBalances(const Engine& engine, const std::vector<LedgerRow>& rows,
                                         absl::Time as_of) {
  std::map<std::pair<std::string, int>, int64_t> from_ledger, from_net, from_balances;
  for (const LedgerRow& row : rows) {
    from_ledger[{row.member, static_cast<int>(row.status)}] += row.amount.fen();
  }
  const std::vector<NetRow> net_rows = *engine.NetLedger(as_of);
  for (const NetRow& row : net_rows) {
    if (row.amount.is_zero()) return ::testing::AssertionFailure() << "zero net row";
    from_net[{row.member, static_cast<int>(row.status)}] += row.amount.fen();
  }
  const std::vector<BalanceRow> balances = *engine.Balances(as_of);
  for (size_t i = 0; i < balances.size(); ++i) {
    const BalanceRow& row = balances[i];
    if (row.amount.is_zero()) return ::testing::AssertionFailure() << "zero balance row";
    if (i > 0 && std::make_pair(balances[i - 1].member, balances[i - 1].status) >=
                     std::make_pair(row.member, row.status)) {
      return ::testing::AssertionFailure() << "balances not sorted at " << row.member;
    }
    from_balances[{row.member, static_cast<int>(row.status)}] = row.amount.fen();
  }
  std::erase_if(from_ledger, [](const auto& item) { return item.second == 0; });
  if (from_ledger != from_balances) return ::testing::AssertionFailure() << "ledger ≠ balances";
  if (from_net != from_balances) return ::testing::AssertionFailure() << "net ledger ≠ balances";
  const MemberTotals totals = *engine.Totals(as_of);
  const absl::Span<const std::string> ids = engine.member_ids();
  for (size_t m = 0; m < ids.size(); ++m) {
    const int64_t columns[] = {totals.pending[m], totals.frozen[m], totals.available[m],
                               totals.held[m]};
    for (int status = 0; status < 4; ++status) {
      auto it = from_balances.find({ids[m], status});
      if (columns[status] != (it == from_balances.end() ? 0 : it->second)) {
        return ::testing::AssertionFailure() << "Totals ≠ balances for " << ids[m];
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// The entry statuses of SPEC §4, from the events alone.
::testing::AssertionResult CheckStatuses(const Engine& engine, const std::vector<LedgerRow>& rows,
                                         const std::map<std::string, OrderFacts>& orders,
                                         absl::Time as_of) {
  const absl::Duration hold = absl::Hours(24 * engine.policy().hold_days);
  for (const LedgerRow& row : rows) {
    EntryStatus expected = EntryStatus::kAvailable;
    if (row.clawback) {
      expected = EntryStatus::kAvailable;
    } else if (row.action == Action::kHold) {
      expected = EntryStatus::kHeld;
    } else if (row.order) {
      const OrderFacts& order = orders.at(*row.order);
      expected = !order.confirmed                  ? EntryStatus::kPending
                 : as_of < *order.confirmed + hold ? EntryStatus::kFrozen
                                                   : EntryStatus::kAvailable;
    }
    if (row.status != expected) {
      return ::testing::AssertionFailure()
             << row.order.value_or("-") << " " << row.member << " " << row.kind << " is "
             << EntryStatusName(row.status) << ", expected " << EntryStatusName(expected);
    }
  }
  return ::testing::AssertionSuccess();
}

// What the ledger pays, per (order, member, kind) with the order -1 for
// invite rewards, read from the columns after every event. Entry rows come
// first in application order, so an invite reward's row index is stable.
struct Nets {
  // (order slot, member, kind) packed: the slot is the order index, or
  // -1 - row for an invite reward, as a member's invite rewards are separate
  // entries (one per step), never clawed back.
  static uint64_t Key(int32_t slot, int32_t member, int kind) {
    return uint64_t{static_cast<uint32_t>(slot)} << 32 |
           uint64_t{static_cast<uint32_t>(member)} << 8 | static_cast<uint64_t>(kind);
  }
  static int32_t Slot(uint64_t key) { return static_cast<int32_t>(key >> 32); }
  static int32_t Member(uint64_t key) { return static_cast<int32_t>((key >> 8) & 0xFFFFFF); }

  absl::flat_hash_map<uint64_t, int64_t> net;
  std::vector<uint64_t> entries;  // one per entry row, in application order
};

// `kinds` gives kind names stable numbers across calls.
Nets NetsOf(const LedgerColumns& table, std::map<std::string, int>* kinds) {
  std::vector<int> kind(table.kind_names.size());
  for (size_t k = 0; k < kind.size(); ++k) {
    kind[k] = kinds->emplace(table.kind_names[k], static_cast<int>(kinds->size())).first->second;
  }
  Nets nets;
  nets.net.reserve(table.amount.size());
  for (size_t i = 0; i < table.amount.size(); ++i) {
    const int32_t slot = table.order[i] >= 0 ? table.order[i] : -1 - static_cast<int32_t>(i);
    const uint64_t key = Nets::Key(slot, table.member[i], kind[table.kind[i]]);
    nets.net[key] += table.amount[i];
    if (!table.clawback[i]) nets.entries.push_back(key);
  }
  return nets;
}

// The streams are split over kShards tests, which ctest runs in parallel;
// stream s is generated from seed 20261124 + s alone, so any one failure
// reproduces on its own.
constexpr int kShards = 4;

class InvariantsTest : public ::testing::TestWithParam<int> {};

TEST_P(InvariantsTest, RandomStreamsKeepTheLedgerSound) {
  const int first = Streams() * GetParam() / kShards;
  const int end = Streams() * (GetParam() + 1) / kShards;
  const absl::Time far = *ParseTimestamp("2031-01-01T00:00:00+08:00");
  const auto started = std::chrono::steady_clock::now();
  int checked = 0;
  int64_t applied = 0, rejected = 0, entries = 0, refunds = 0, month_checks = 0;
  ExplanationStats explained;
  for (int stream = first; stream < end; ++stream) {
    std::mt19937_64 random(20261124 + static_cast<uint64_t>(stream));
    const std::string policy_json =
        stream % 4 == 3 ? RandomPolicy(random) : kPolicies[stream % std::size(kPolicies)];
    const absl::StatusOr<Policy> loaded = Policy::FromJson(policy_json);
    ASSERT_THAT(loaded, IsOk()) << policy_json;
    const Policy& policy = *loaded;
    const std::vector<std::string> events = RandomStream(
        random, StreamEvents() / 3 + static_cast<int>(random() % (2 * StreamEvents() / 3 + 1)));
    SCOPED_TRACE(
        absl::StrCat("stream ", stream, ", policy ",
                     stream % 4 == 3 ? policy_json : absl::StrCat(stream % std::size(kPolicies))));
    Engine engine(policy);
    std::map<std::string, OrderFacts> orders;
    std::map<std::string, int> kinds;
    absl::flat_hash_map<uint64_t, absl::CivilMonth> month_of;  // per entry key
    Nets nets;
    const bool per_event_snapshots = stream % 16 == 0;
    std::string snapshot = engine.Snapshot();
    std::vector<std::string> accepted;
    for (size_t index = 0; index < events.size(); ++index) {
      const std::string& event = events[index];
      SCOPED_TRACE(absl::StrCat("event ", index, ": ", event));
      const absl::Status status = engine.ApplyJson(event);
      ++(status.ok() ? applied : rejected);
      if (!status.ok()) {
        // A rejected event changes nothing, down to the snapshot bytes
        // (checked event by event in some streams, as a snapshot costs; in
        // all of them by the replay of the accepted events below).
        ASSERT_FALSE(ErrorCodeOf(status).empty()) << status;
        if (per_event_snapshots) {
          ASSERT_EQ(engine.Snapshot(), snapshot) << "rejected event changed state: " << status;
        }
        continue;
      }
      accepted.push_back(event);
      if (per_event_snapshots) snapshot = engine.Snapshot();
      const absl::StatusOr<Event> parsed = ParseEventJson(event);
      ASSERT_THAT(parsed, IsOk());
      const bool refund = parsed->type == EventType::kRefund;
      int32_t refunded_order = -1;
      if (parsed->type == EventType::kOrder) {
        orders[parsed->order] = {parsed->amount->fen(), 0, parsed->at, std::nullopt, {}};
      } else if (parsed->type == EventType::kConfirm) {
        OrderFacts& order = orders.at(parsed->order);
        if (!order.confirmed) order.confirmed = parsed->at;
      } else if (refund) {
        OrderFacts& order = orders.at(parsed->order);
        order.refunded += parsed->amount ? parsed->amount->fen() : order.amount - order.refunded;
        order.refunds.emplace_back(
            parsed->at, order.AvailableAt(parsed->at, absl::Hours(24 * policy.hold_days)));
        ASSERT_LE(order.refunded, order.amount);
        const absl::Span<const std::string> ids = engine.order_ids();
        refunded_order =
            static_cast<int32_t>(std::find(ids.begin(), ids.end(), parsed->order) - ids.begin());
      }
      const LedgerColumns table = *engine.LedgerTable(far);
      Nets after = NetsOf(table, &kinds);
      // Entries are only ever added; an entry never changes beneficiary.
      ASSERT_GE(after.entries.size(), nets.entries.size());
      ASSERT_TRUE(std::equal(nets.entries.begin(), nets.entries.end(), after.entries.begin()));
      if (refund) {
        ASSERT_EQ(after.entries.size(), nets.entries.size()) << "a refund paid";
      }
      // A new entry counts in the month (policy zone) of the event that
      // made it: its order's, or the invite's.
      const absl::CivilMonth month = absl::ToCivilMonth(parsed->at, policy.timezone);
      for (size_t e = nets.entries.size(); e < after.entries.size(); ++e) {
        month_of.emplace(after.entries[e], month);
      }
      for (const auto& [key, was] : nets.net) {
        const int64_t now = after.net.at(key);
        if (refund && Nets::Slot(key) == refunded_order) {
          // A refund never raises an entry of its order...
          ASSERT_LE(now, was) << "refund raised an entry of member " << Nets::Member(key);
        } else {
          // ...and nothing else ever changes what an earlier entry pays.
          ASSERT_EQ(now, was) << "entry of order slot " << Nets::Slot(key) << " changed";
        }
      }
      nets = std::move(after);
      // Per order: never negative, within order_total, zero once refunded in
      // full. Per member and month within member_month; all of it within
      // the budget.
      std::vector<int64_t> per_order(engine.order_ids().size());
      absl::flat_hash_map<std::pair<int32_t, absl::CivilMonth>, int64_t> per_month;
      int64_t total = 0;
      for (const auto& [key, net] : nets.net) {
        ASSERT_GE(net, 0) << "negative net for member " << Nets::Member(key);
        if (Nets::Slot(key) >= 0) per_order[Nets::Slot(key)] += net;
        if (policy.cap_member_month) per_month[{Nets::Member(key), month_of.at(key)}] += net;
        total += net;
      }
      for (size_t o = 0; o < per_order.size(); ++o) {
        const OrderFacts& order = orders.at(engine.order_ids()[o]);
        const int64_t base = order.amount - order.refunded;
        if (base == 0) {
          ASSERT_EQ(per_order[o], 0) << "fully refunded order still pays";
        }
        if (policy.cap_order_total) {
          ASSERT_LE(
              per_order[o],
              ApplyRate(Money::FromFen(base), *policy.cap_order_total, RoundingMode::kDown).fen())
              << "order_total exceeded on " << engine.order_ids()[o];
        }
      }
      for (const auto& [member_month, paid] : per_month) {
        ASSERT_LE(paid, policy.cap_member_month->fen())
            << "member_month exceeded by " << engine.member_ids()[member_month.first] << " in "
            << member_month.second;
        ++month_checks;
      }
      if (policy.cap_budget) {
        ASSERT_LE(total, policy.cap_budget->fen()) << "budget exceeded";
      }
      refunds += refund;
    }
    const absl::Time last = engine.last_event_time().value_or(far);
    const std::vector<LedgerRow> rows = *engine.Ledger(far);
    const std::vector<LedgerRow> rows_last = *engine.Ledger(last);
    ASSERT_TRUE(CheckBalances(engine, rows, far));
    ASSERT_TRUE(CheckBalances(engine, rows_last, last));
    ASSERT_TRUE(CheckStatuses(engine, rows, orders, far));
    ASSERT_TRUE(CheckStatuses(engine, rows_last, orders, last));
    ASSERT_TRUE(CheckExplanations(engine, rows, *engine.LedgerTable(far), orders, &explained));
    // Same events, same output, byte for byte: ledger, flags, snapshot.
    const std::string fingerprint = Fingerprint(engine, far) + Fingerprint(engine, last);
    Engine replay(policy);
    for (const std::string& event : events) (void)replay.ApplyJson(event);
    snapshot = engine.Snapshot();
    ASSERT_EQ(Fingerprint(replay, far) + Fingerprint(replay, last), fingerprint);
    ASSERT_EQ(replay.Snapshot(), snapshot);
    // The accepted events alone give the same state: the rejected ones left
    // no trace.
    Engine shadow(policy);
    for (const std::string& event : accepted) ASSERT_THAT(shadow.ApplyJson(event), IsOk());
    ASSERT_EQ(shadow.Snapshot(), snapshot);
    // Snapshots at two random points, each restored and continued: exactly
    // the uninterrupted run, down to the snapshot bytes.
    size_t cuts[] = {random() % (events.size() + 1), random() % (events.size() + 1)};
    std::sort(std::begin(cuts), std::end(cuts));
    absl::StatusOr<Engine> resumed = Engine(policy);
    size_t next = 0;
    for (size_t cut : cuts) {
      for (; next < cut; ++next) (void)resumed->ApplyJson(events[next]);
      resumed = Engine::Restore(resumed->Snapshot());
      ASSERT_THAT(resumed, IsOk());
    }
    for (; next < events.size(); ++next) (void)resumed->ApplyJson(events[next]);
    ASSERT_EQ(Fingerprint(*resumed, far) + Fingerprint(*resumed, last), fingerprint)
        << "cuts at " << cuts[0] << ", " << cuts[1];
    ASSERT_EQ(resumed->Snapshot(), snapshot);
    entries += static_cast<int64_t>(rows.size());
    ++checked;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(checked, end - first);
  // The streams must exercise the engine, not just its error paths.
  EXPECT_GT(applied, 3 * rejected);
  EXPECT_GT(entries, 20 * checked);
  if (checked >= 100) {
    EXPECT_GT(explained.refunds, 0);
    EXPECT_GT(explained.cuts, 0);
    EXPECT_GT(explained.denied, 0);
    EXPECT_GT(explained.clawbacks, 0);
  }
  std::cout << "streams " << first << ".." << end - 1 << ": " << checked << ", events applied "
            << applied << ", rejected " << rejected << ", refunds " << refunds << ", ledger rows "
            << entries << " (explanations: " << explained.rules << " rules, " << explained.cuts
            << " cuts, " << explained.denied << " denied, " << explained.refunds
            << " after refunds, " << explained.clawbacks << " clawbacks), member-month sums "
            << month_checks << ", " << absl::StrFormat("%.1f", seconds) << " s\n";
}

INSTANTIATE_TEST_SUITE_P(Shards, InvariantsTest, ::testing::Range(0, kShards));

// The explanation checker itself: it accepts the engine's arithmetic and
// refuses a wrong product, rounding, base or tier.
TEST(ExplanationCheckTest, RecomputesTheArithmetic) {
  int64_t raw = 0;
  EXPECT_TRUE(CheckRule("level1 via tiers[1] 5% × 4999.99 = 249.9995 → 250.00 half_up", 499999,
                        "half_up", 0, &raw));
  EXPECT_EQ(raw, 25000);
  EXPECT_TRUE(
      CheckRule("levels[0] 5% × 4999.99 = 249.9995 → 249.99 down", 499999, "down", 0, &raw));
  EXPECT_TRUE(CheckRule("levels[0] 10% × 0.25 = 0.025 → 0.02 half_even", 25, "half_even", 0, &raw));
  EXPECT_TRUE(CheckRule("levels[0] 10% × 0.35 = 0.035 → 0.04 half_even", 35, "half_even", 0, &raw));
  EXPECT_FALSE(
      CheckRule("levels[0] 5% × 4999.99 = 249.9995 → 249.99 half_up", 499999, "half_up", 0, &raw));
  EXPECT_FALSE(
      CheckRule("levels[0] 5% × 4999.99 = 249.9996 → 250.00 half_up", 499999, "half_up", 0, &raw));
  EXPECT_FALSE(
      CheckRule("levels[0] 5% × 4999.98 = 249.999 → 250.00 half_up", 499999, "half_up", 0, &raw));
  EXPECT_FALSE(CheckRule("levels[0] 5% × 4999.99 = 249.9995 → 250.00 half_even", 499999, "half_up",
                         0, &raw));
  EXPECT_TRUE(
      CheckRule("levels[0].tiers[1] (from 300.00 below 500.00) 5% × 400.00 = 20.00 → "
                "20.00 half_up",
                40000, "half_up", 0, &raw));
  EXPECT_FALSE(
      CheckRule("levels[0].tiers[1] (from 300.00 below 500.00) 5% × 500.00 = 25.00 → "
                "25.00 half_up",
                50000, "half_up", 0, &raw));
  EXPECT_TRUE(CheckRule("levels[0].tiers[2] (from 500.00) fixed 40.00", 50000, "half_up", 0, &raw));
  EXPECT_EQ(raw, 4000);
  EXPECT_FALSE(
      CheckRule("levels[0].tiers[2] (from 500.00) fixed 40.00", 49999, "half_up", 0, &raw));
  EXPECT_TRUE(CheckRule("levels[0] marginal 4% × 300.00 + 5% × 50.00 = 14.50 → 14.50 half_up",
                        35000, "half_up", 0, &raw));
  EXPECT_FALSE(CheckRule("levels[0] marginal 4% × 300.00 + 5% × 50.00 = 14.50 → 14.50 half_up",
                         36000, "half_up", 0, &raw));
  EXPECT_TRUE(CheckRule("leader.peer 10% × leader bonus 3.35 = 0.335 → 0.34 half_up", 0, "half_up",
                        335, &raw));
  EXPECT_FALSE(CheckRule("leader.peer 10% × leader bonus 3.35 = 0.335 → 0.34 half_up", 0, "half_up",
                         336, &raw));
  EXPECT_TRUE(CheckRule("leader.ranks[1] gold − ranks[0] silver 2% × 100.00 = 2.00 → 2.00 down",
                        10000, "down", 0, &raw));
}

}  // namespace
}  // namespace refpay

namespace refpay {
namespace {

TEST(SnapshotTest, CorruptTruncatedOrForeignSnapshotsAreClearErrors) {
  std::mt19937_64 random(99);
  Engine engine(*Policy::FromJson(kPolicies[3]));
  for (const std::string& event : RandomStream(random, 150)) (void)engine.ApplyJson(event);
  const std::string snapshot = engine.Snapshot();
  ASSERT_THAT(Engine::Restore(snapshot), IsOk());
  EXPECT_THAT(Engine::Restore(""), ::refpay::testing::HasReason("bad_snapshot"));
  EXPECT_THAT(Engine::Restore("not a snapshot at all"),
              ::refpay::testing::HasReason("bad_snapshot"));
  for (size_t cut : {size_t{9}, size_t{24}, snapshot.size() / 2, snapshot.size() - 1}) {
    EXPECT_THAT(Engine::Restore(snapshot.substr(0, cut)),
                ::refpay::testing::HasReason("bad_snapshot"));
  }
  for (int i = 0; i < 200; ++i) {
    std::string flipped = snapshot;
    const size_t at = 8 + random() % (flipped.size() - 8);
    flipped[at] = static_cast<char>(flipped[at] ^ (1 + random() % 255));
    const absl::StatusOr<Engine> restored = Engine::Restore(flipped);
    ASSERT_FALSE(restored.ok()) << "flipped byte " << at;
    const std::string reason = ErrorCodeOf(restored.status());
    EXPECT_TRUE(reason == "bad_snapshot" || reason == "snapshot_version") << reason;
  }
  std::string future = snapshot;
  future[8] = 2;  // format version 2
  EXPECT_THAT(Engine::Restore(future), ::refpay::testing::HasReason("snapshot_version"));
}

}  // namespace
}  // namespace refpay
