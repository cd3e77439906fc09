// `refpay settle`: applies an event stream (JSONL, or members/orders CSV) to
// a policy and writes the ledger, balances, flags, errors and a summary.
#include <csv.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli.h"
#include "refpay/engine.h"
#include "refpay/event.h"
#include "refpay/lint.h"
#include "refpay/status.h"

namespace refpay::cli {
namespace {

struct Options {
  std::string policy;
  std::string events;
  std::string members;
  std::string orders;
  std::string out;
  std::string state;  // --state: checkpoint file; empty = no checkpoints
  int64_t checkpoint_every = 100'000;
  std::optional<absl::Time> as_of;
  bool quiet = false;
};

// A rejected input line, for errors.csv and stderr.
struct Rejection {
  std::string source;
  int64_t line;
  std::string code;
  std::string message;
};

// An event read from a CSV row, with where it came from.
struct SourcedEvent {
  Event event;
  std::string source;
  int64_t line;
};

absl::StatusOr<Options> ParseOptions(const std::vector<std::string>& args) {
  Options options;
  bool checkpoint_every_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--quiet") {
      options.quiet = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
    }
    const std::string& value = args[++i];
    if (flag == "--policy") {
      options.policy = value;
    } else if (flag == "--events") {
      options.events = value;
    } else if (flag == "--members") {
      options.members = value;
    } else if (flag == "--orders") {
      options.orders = value;
    } else if (flag == "--out") {
      options.out = value;
    } else if (flag == "--state") {
      options.state = value;
    } else if (flag == "--checkpoint-every") {
      if (!absl::SimpleAtoi(value, &options.checkpoint_every) || options.checkpoint_every <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--checkpoint-every: \"", value, "\" is not a positive number of events"));
      }
      checkpoint_every_given = true;
    } else if (flag == "--as-of") {
      absl::StatusOr<absl::Time> t = ParseTimestamp(value);
      if (!t.ok())
        return absl::InvalidArgumentError(absl::StrCat("--as-of: ", t.status().message()));
      options.as_of = *t;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option ", flag));
    }
  }
  if (options.policy.empty() || options.out.empty()) {
    return absl::InvalidArgumentError("--policy and --out are required");
  }
  if (options.events.empty() == options.orders.empty() ||
      (!options.members.empty() && options.orders.empty())) {
    return absl::InvalidArgumentError("give either --events FILE or --members FILE --orders FILE");
  }
  if (checkpoint_every_given && options.state.empty()) {
    return absl::InvalidArgumentError("--checkpoint-every needs --state FILE");
  }
  return options;
}

// Reads a whole CSV file into rows of fields with libcsv (RFC 4180 quoting).
absl::StatusOr<std::vector<std::vector<std::string>>> ReadCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  struct Collector {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
  } collector;
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_APPEND_NULL) != 0) {
    return absl::InternalError("cannot initialise the CSV parser");
  }
  auto on_field = [](void* data, size_t length, void* self) {
    static_cast<Collector*>(self)->row.emplace_back(static_cast<const char*>(data), length);
  };
  auto on_row = [](int, void* self) {
    auto* c = static_cast<Collector*>(self);
    c->rows.push_back(std::move(c->row));
    c->row.clear();
  };
  std::vector<char> buffer(1 << 16);
  absl::Status status;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (csv_parse(&parser, buffer.data(), got, on_field, on_row, &collector) != got) {
      status = absl::InvalidArgumentError(absl::StrCat(
          path, " (near row ", collector.rows.size() + 1, "): ", csv_strerror(csv_error(&parser))));
      break;
    }
  }
  if (status.ok()) csv_fini(&parser, on_field, on_row, &collector);
  csv_free(&parser);
  if (!status.ok()) return status;
  return std::move(collector.rows);
}

// Maps a CSV header to column indices; missing required columns are errors.
absl::StatusOr<std::map<std::string, size_t>> Columns(const std::vector<std::string>& header,
                                                      const std::vector<std::string>& required,
                                                      const std::string& path) {
  std::map<std::string, size_t> columns;
  for (size_t i = 0; i < header.size(); ++i) columns[header[i]] = i;
  for (const std::string& name : required) {
    if (!columns.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":1: missing column \"", name, "\""));
    }
  }
  return columns;
}

// Converts members.csv and orders.csv into a time-ordered event stream.
// Within one instant, members come before orders and rows keep file order.
absl::StatusOr<std::vector<SourcedEvent>> EventsFromCsv(const Options& options,
                                                        std::vector<Rejection>* rejected) {
  std::vector<SourcedEvent> events;
  auto cell = [](const std::vector<std::string>& row, const std::map<std::string, size_t>& columns,
                 const std::string& name) -> std::string {
    auto it = columns.find(name);
    return it == columns.end() || it->second >= row.size() ? std::string() : row[it->second];
  };
  // Messages start with the column, as policy errors start with the key.
  auto time_of = [&](const char* column, const std::string& text, const std::string& source,
                     int64_t line, absl::Time* out) {
    absl::StatusOr<absl::Time> t = ParseTimestamp(text);
    if (!t.ok()) {
      rejected->push_back(
          {source, line, "bad_time", absl::StrCat(column, ": ", t.status().message())});
      return false;
    }
    *out = *t;
    return true;
  };
  if (!options.members.empty()) {
    REFPAY_ASSIGN_OR_RETURN(auto rows, ReadCsv(options.members));
    if (rows.empty())
      return absl::InvalidArgumentError(absl::StrCat(options.members, ": empty file"));
    REFPAY_ASSIGN_OR_RETURN(auto columns,
                            Columns(rows[0], {"member", "joined_at"}, options.members));
    for (size_t r = 1; r < rows.size(); ++r) {
      const auto& row = rows[r];
      const auto line = static_cast<int64_t>(r + 1);
      Event join;
      join.type = EventType::kJoin;
      join.member = cell(row, columns, "member");
      if (join.member.empty()) {
        rejected->push_back({options.members, line, "bad_event", "empty member id"});
        continue;
      }
      if (!time_of("joined_at", cell(row, columns, "joined_at"), options.members, line, &join.at))
        continue;
      if (std::string inviter = cell(row, columns, "inviter"); !inviter.empty())
        join.inviter = inviter;
      join.identity = {cell(row, columns, "region"), cell(row, columns, "device"),
                       cell(row, columns, "phone"), cell(row, columns, "payment")};
      events.push_back({join, options.members, line});
      if (std::string role = cell(row, columns, "role"); !role.empty()) {
        Event set_role;
        set_role.type = EventType::kSetRole;
        set_role.member = join.member;
        set_role.role = role;
        set_role.at = join.at;
        if (std::string rank = cell(row, columns, "rank"); !rank.empty()) set_role.rank = rank;
        events.push_back({set_role, options.members, line});
      }
    }
  }
  REFPAY_ASSIGN_OR_RETURN(auto rows, ReadCsv(options.orders));
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(options.orders, ": empty file"));
  REFPAY_ASSIGN_OR_RETURN(auto columns,
                          Columns(rows[0], {"id", "buyer", "amount", "at"}, options.orders));
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const auto line = static_cast<int64_t>(r + 1);
    Event order;
    order.type = EventType::kOrder;
    order.order = cell(row, columns, "id");
    order.buyer = cell(row, columns, "buyer");
    if (order.order.empty() || order.buyer.empty()) {
      rejected->push_back({options.orders, line, "bad_event", "empty id or buyer"});
      continue;
    }
    absl::StatusOr<Money> amount = Money::Parse(cell(row, columns, "amount"));
    if (!amount.ok()) {
      rejected->push_back({options.orders, line, "bad_amount",
                           absl::StrCat("amount: ", amount.status().message())});
      continue;
    }
    order.amount = *amount;
    if (!time_of("at", cell(row, columns, "at"), options.orders, line, &order.at)) continue;
    if (std::string category = cell(row, columns, "category"); !category.empty())
      order.category = category;
    events.push_back({order, options.orders, line});
    if (std::string confirmed = cell(row, columns, "confirmed_at"); !confirmed.empty()) {
      Event confirm;
      confirm.type = EventType::kConfirm;
      confirm.order = order.order;
      if (time_of("confirmed_at", confirmed, options.orders, line, &confirm.at))
        events.push_back({confirm, options.orders, line});
    }
    if (std::string refund_amount = cell(row, columns, "refund_amount"); !refund_amount.empty()) {
      Event refund;
      refund.type = EventType::kRefund;
      refund.order = order.order;
      absl::StatusOr<Money> money = Money::Parse(refund_amount);
      if (!money.ok()) {
        rejected->push_back({options.orders, line, "bad_amount",
                             absl::StrCat("refund_amount: ", money.status().message())});
        continue;
      }
      refund.amount = *money;
      if (time_of("refunded_at", cell(row, columns, "refunded_at"), options.orders, line,
                  &refund.at)) {
        events.push_back({refund, options.orders, line});
      }
    }
  }
  std::stable_sort(events.begin(), events.end(), [](const SourcedEvent& a, const SourcedEvent& b) {
    return a.event.at < b.event.at;
  });
  return events;
}

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// Writes `content` to `path` atomically and durably: a temporary file,
// fsync, a rename over `path`, then fsync of the directory. A reader (or a
// run resumed after a crash) sees the old file or the new one, never half.
absl::Status WriteAtomically(const std::filesystem::path& path, const std::string& content) {
  const std::string temporary = path.string() + ".tmp";
  auto failed = [](const std::string& what, const std::string& name) {
    return absl::DataLossError(absl::StrCat(name, ": ", what, ": ", std::strerror(errno)));
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(temporary, ": cannot write: ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status status = failed("write failed", temporary);
      ::close(fd);
      return status;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status status = failed("fsync failed", temporary);
    ::close(fd);
    return status;
  }
  if (::close(fd) != 0) return failed("close failed", temporary);
  if (::rename(temporary.c_str(), path.c_str()) != 0) return failed("rename failed", path.string());
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    const bool synced = ::fsync(dir_fd) == 0;
    ::close(dir_fd);
    if (!synced) return failed("fsync failed", dir.string());
  }
  return absl::OkStatus();
}

// ---- Checkpoints (--state). ------------------------------------------------
//
// A state file is text lines, then the engine snapshot, then a check line:
//
//   refpay settle state 1
//   input jsonl|csv
//   file policy|events|members|orders SIZE FNV64 PATH   (one per input file)
//   position N      jsonl: byte offset of the next line; csv: next event index
//   line N          jsonl: number of the last line read
//   applied N
//   micros N        time spent applying events, over all runs
//   rejected N      then N lines: SOURCE \t LINE \t CODE \t MESSAGE
//   snapshot N      then N bytes of Engine::Snapshot() and a newline
//   check FNV64     of every byte before this line
//
// Text fields escape backslash, tab, newline and carriage return.

constexpr char kStateMagic[] = "refpay settle state 1";

// An input file as the state records it: content fingerprint and path.
struct InputFile {
  std::string role;  // policy, events, members, orders
  std::string path;
  uint64_t size = 0;
  uint64_t hash = 0;
  friend bool operator==(const InputFile&, const InputFile&) = default;
};

// Where a run stands: what a checkpoint restores besides the engine.
struct Progress {
  int64_t position = 0;
  int64_t line = 0;
  int64_t applied = 0;
  int64_t micros = 0;
  std::vector<Rejection> rejected;
};

struct State {
  std::string input;  // "jsonl" or "csv"
  std::vector<InputFile> files;
  Progress progress;
  std::string snapshot;
};

// FNV-1a, 64 bits: a fingerprint that notices a changed input, not a
// defence against a forged one.
constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
uint64_t Fnv1a(std::string_view bytes, uint64_t hash = kFnvOffset) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

absl::StatusOr<InputFile> Fingerprint(std::string role, const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    // A pipe would be consumed by the fingerprint and could not be re-read.
    return absl::InvalidArgumentError(absl::StrCat(
        "--", role, " ", path, ": --state needs regular files, to fingerprint and re-read them"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  InputFile file{std::move(role), path, 0, kFnvOffset};
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(in.gcount());
    file.hash = Fnv1a(std::string_view(buffer.data(), got), file.hash);
    file.size += got;
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return file;
}

absl::StatusOr<std::vector<InputFile>> InputFiles(const Options& options) {
  std::vector<std::pair<std::string, std::string>> named = {{"policy", options.policy}};
  if (!options.events.empty()) named.emplace_back("events", options.events);
  if (!options.members.empty()) named.emplace_back("members", options.members);
  if (!options.orders.empty()) named.emplace_back("orders", options.orders);
  std::vector<InputFile> files;
  for (auto& [role, path] : named) {
    REFPAY_ASSIGN_OR_RETURN(InputFile file, Fingerprint(role, path));
    files.push_back(std::move(file));
  }
  return files;
}

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

bool Unescape(std::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out->push_back(text[i]);
      continue;
    }
    if (++i == text.size()) return false;
    switch (text[i]) {
      case '\\':
        out->push_back('\\');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      default:
        return false;
    }
  }
  return true;
}

// Debian's Abseil has its own string_view, not an alias of std's.
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }
std::string_view Sv(absl::string_view s) { return {s.data(), s.size()}; }

std::string Hex(uint64_t value) { return absl::StrFormat("%016x", value); }

std::string EncodeState(const State& state) {
  std::string out = absl::StrCat(kStateMagic, "\ninput ", state.input, "\n");
  for (const InputFile& f : state.files) {
    absl::StrAppend(&out, "file ", f.role, " ", f.size, " ", Hex(f.hash), " ", Escape(f.path),
                    "\n");
  }
  const Progress& p = state.progress;
  absl::StrAppend(&out, "position ", p.position, "\nline ", p.line, "\napplied ", p.applied,
                  "\nmicros ", p.micros, "\nrejected ", p.rejected.size(), "\n");
  for (const Rejection& r : p.rejected) {
    absl::StrAppend(&out, Escape(r.source), "\t", r.line, "\t", Escape(r.code), "\t",
                    Escape(r.message), "\n");
  }
  absl::StrAppend(&out, "snapshot ", state.snapshot.size(), "\n");
  out += state.snapshot;
  out += "\n";
  absl::StrAppend(&out, "check ", Hex(Fnv1a(out)), "\n");
  return out;
}

absl::StatusOr<State> DecodeState(const std::string& path, std::string_view bytes) {
  int line_number = 0;
  auto bad = [&](std::string_view why) {
    const std::string where =
        line_number > 0 ? absl::StrCat(path, ":", line_number) : std::string(path);
    return absl::DataLossError(absl::StrCat(where, ": not a usable settle state file (", Av(why),
                                            "); remove it to start over"));
  };
  constexpr size_t kCheckLine = 6 + 16 + 1;  // "check " + 16 hex digits + "\n"
  if (bytes.size() < kCheckLine || bytes.substr(bytes.size() - kCheckLine, 6) != "check " ||
      bytes.back() != '\n') {
    return bad("no check line at the end: truncated?");
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kCheckLine);
  if (Hex(Fnv1a(body)) != bytes.substr(bytes.size() - kCheckLine + 6, 16)) {
    return bad("check sum mismatch: corrupt");
  }
  std::string_view rest = body;
  auto next_line = [&](std::string_view* line) {
    const size_t end = rest.find('\n');
    if (end == std::string_view::npos) return false;
    *line = rest.substr(0, end);
    rest.remove_prefix(end + 1);
    ++line_number;
    return true;
  };
  std::string_view line;
  // "key value" with an integer value.
  auto number = [&](std::string_view key, int64_t* value) {
    return next_line(&line) && line.size() > key.size() + 1 && line.substr(0, key.size()) == key &&
           line[key.size()] == ' ' && absl::SimpleAtoi(Av(line.substr(key.size() + 1)), value) &&
           *value >= 0;
  };
  if (!next_line(&line) || line != kStateMagic) return bad("unknown header");
  State state;
  if (!next_line(&line) || (line != "input jsonl" && line != "input csv")) {
    return bad(R"(expected "input jsonl" or "input csv")");
  }
  state.input = std::string(line.substr(6));
  while (absl::StartsWith(Av(rest), "file ")) {
    next_line(&line);
    std::vector<absl::string_view> parts = absl::StrSplit(Av(line), absl::MaxSplits(' ', 4));
    InputFile f;
    if (parts.size() != 5 || !absl::SimpleAtoi(parts[2], &f.size) ||
        !absl::SimpleHexAtoi(parts[3], &f.hash) || !Unescape(Sv(parts[4]), &f.path)) {
      return bad("bad file line");
    }
    f.role = std::string(Sv(parts[1]));
    state.files.push_back(std::move(f));
  }
  Progress& p = state.progress;
  int64_t rejected = 0;
  int64_t snapshot = 0;
  if (!number("position", &p.position)) return bad("expected position");
  if (!number("line", &p.line)) return bad("expected line");
  if (!number("applied", &p.applied)) return bad("expected applied");
  if (!number("micros", &p.micros)) return bad("expected micros");
  if (!number("rejected", &rejected)) return bad("expected rejected");
  for (int64_t i = 0; i < rejected; ++i) {
    if (!next_line(&line)) return bad("missing rejected line");
    std::vector<absl::string_view> parts = absl::StrSplit(Av(line), '\t');
    Rejection r;
    if (parts.size() != 4 || !Unescape(Sv(parts[0]), &r.source) ||
        !absl::SimpleAtoi(parts[1], &r.line) || !Unescape(Sv(parts[2]), &r.code) ||
        !Unescape(Sv(parts[3]), &r.message)) {
      return bad("bad rejected line");
    }
    p.rejected.push_back(std::move(r));
  }
  if (!number("snapshot", &snapshot)) return bad("expected snapshot");
  if (rest.size() != static_cast<size_t>(snapshot) + 1 || rest.back() != '\n') {
    return bad("snapshot length");
  }
  state.snapshot = std::string(rest.substr(0, static_cast<size_t>(snapshot)));
  return state;
}

// Reads a state file; nullopt when there is none yet.
absl::StatusOr<std::optional<State>> ReadState(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::optional<State>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  REFPAY_ASSIGN_OR_RETURN(State state, DecodeState(path, bytes.str()));
  return std::optional<State>(std::move(state));
}

// Refuses a state written for other inputs, naming the first difference.
absl::Status SameInputs(const Options& options, const State& state, const std::string& input,
                        const std::vector<InputFile>& files) {
  auto refuse = [&](const std::string& why) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.state, ": cannot resume: ", why,
                     "; remove the state file to start over, or give the inputs it was "
                     "written for"));
  };
  if (state.input != input) {
    return refuse(absl::StrCat("it was written for ", state.input, " input, not ", input));
  }
  for (const InputFile& now : files) {
    auto was = std::find_if(state.files.begin(), state.files.end(),
                            [&](const InputFile& f) { return f.role == now.role; });
    if (was == state.files.end()) {
      return refuse(absl::StrCat("it was written without --", now.role));
    }
    if (was->path != now.path) {
      return refuse(
          absl::StrCat("it was written for --", now.role, " ", was->path, ", not ", now.path));
    }
    if (was->size != now.size || was->hash != now.hash) {
      return refuse(absl::StrCat("--", now.role, " ", now.path,
                                 " changed since the state was written (", was->size,
                                 " bytes, fingerprint ", Hex(was->hash), "; now ", now.size,
                                 " bytes, fingerprint ", Hex(now.hash), ")"));
    }
  }
  if (state.files.size() != files.size()) {
    return refuse("it was written for a different set of input files");
  }
  return absl::OkStatus();
}

std::string Padded(std::string_view text, size_t width) {
  std::string out(text);
  // Count UTF-8 code points, not bytes, so Chinese ids line up roughly.
  size_t shown = 0;
  for (unsigned char c : text) shown += (c & 0xC0) != 0x80;
  if (shown < width) out.append(width - shown, ' ');
  return out;
}

std::string RightAligned(const std::string& text, size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

// Builds summary.txt: totals per kind and status, top earners, flags, lint.
absl::StatusOr<std::string> Summary(const Engine& engine, const std::vector<LedgerRow>& ledger,
                                    const std::vector<BalanceRow>& balances,
                                    const std::vector<Flag>& flags,
                                    const std::vector<Rejection>& rejected,
                                    const std::vector<LintFinding>& lint, int64_t applied,
                                    double seconds, absl::Time as_of) {
  constexpr EntryStatus kStatuses[] = {EntryStatus::kPending, EntryStatus::kFrozen,
                                       EntryStatus::kAvailable, EntryStatus::kHeld};
  std::map<std::string, std::array<Money, 5>> by_kind;  // 4 statuses + total
  std::array<Money, 5> all{};
  for (const LedgerRow& row : ledger) {
    auto& sums = by_kind[row.kind];
    for (int slot : {static_cast<int>(row.status), 4}) {
      REFPAY_ASSIGN_OR_RETURN(sums[slot], CheckedAdd(sums[slot], row.amount));
      REFPAY_ASSIGN_OR_RETURN(all[slot], CheckedAdd(all[slot], row.amount));
    }
  }
  std::ostringstream out;
  const Policy& policy = engine.policy();
  out << "refpay settle: policy \"" << policy.name << "\", as of "
      << FormatTimestamp(as_of, policy.timezone) << "\n";
  out << "events: " << applied << " applied, " << rejected.size() << " rejected"
      << (rejected.empty() ? "" : " (see errors.csv)") << "; members " << engine.member_count()
      << ", orders " << engine.order_count() << "\n";
  out << absl::StrFormat("time: %.3f s for the events (%.0f events/s)\n\n", seconds,
                         seconds > 0 ? static_cast<double>(applied) / seconds : 0.0);
  out << "payout by kind and status (" << policy.currency << ")\n";
  out << Padded("kind", 14);
  for (EntryStatus s : kStatuses) out << RightAligned(std::string(EntryStatusName(s)), 16);
  out << RightAligned("total", 16) << "\n";
  auto print_row = [&](const std::string& name, const std::array<Money, 5>& sums) {
    out << Padded(name, 14);
    for (const Money& m : sums) out << RightAligned(m.ToString(), 16);
    out << "\n";
  };
  for (const auto& [kind, sums] : by_kind) print_row(kind, sums);
  print_row("all", all);

  std::map<std::string, Money> per_member;
  for (const BalanceRow& row : balances) {
    REFPAY_ASSIGN_OR_RETURN(per_member[row.member], CheckedAdd(per_member[row.member], row.amount));
  }
  std::vector<std::pair<std::string, Money>> earners(per_member.begin(), per_member.end());
  std::stable_sort(earners.begin(), earners.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  out << "\ntop earners\n";
  for (size_t i = 0; i < std::min<size_t>(10, earners.size()); ++i) {
    out << "  " << Padded(earners[i].first, 20) << RightAligned(earners[i].second.ToString(), 16)
        << "\n";
  }
  std::map<std::string, int64_t> by_check;
  for (const Flag& flag : flags) ++by_check[flag.check];
  out << "\nflags by check\n";
  if (by_check.empty()) out << "  none\n";
  for (const auto& [check, count] : by_check) out << "  " << Padded(check, 20) << count << "\n";
  std::map<std::string, int64_t> by_code;
  for (const Rejection& r : rejected) ++by_code[r.code];
  if (!by_code.empty()) {
    out << "\nrejected events by code\n";
    for (const auto& [code, count] : by_code) out << "  " << Padded(code, 20) << count << "\n";
  }
  out << "\nlint\n";
  if (lint.empty()) out << "  no findings\n";
  for (const LintFinding& f : lint) {
    out << "  " << SeverityName(f.severity) << " " << f.code << " "
        << (f.path.empty() ? "(policy)" : f.path) << ": " << f.message << "\n";
  }
  return out.str();
}

absl::Status WriteOutputs(const Options& options, const Engine& engine,
                          const std::vector<Rejection>& rejected,
                          const std::vector<LintFinding>& lint, int64_t applied, double seconds) {
  std::optional<absl::Time> last = engine.last_event_time();
  const absl::Time as_of = options.as_of.value_or(last.value_or(absl::UnixEpoch()));
  REFPAY_ASSIGN_OR_RETURN(std::vector<LedgerRow> ledger, engine.Ledger(as_of));
  REFPAY_ASSIGN_OR_RETURN(std::vector<BalanceRow> balances, engine.Balances(as_of));
  const std::vector<Flag> flags = engine.Flags();
  const std::filesystem::path dir(options.out);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat(options.out, ": ", error.message()));
  const absl::TimeZone zone = engine.policy().timezone;

  std::string text = "order,member,kind,amount,status,action,clawback,at,explanation\n";
  for (const LedgerRow& row : ledger) {
    absl::StrAppend(&text, CsvField(row.order.value_or("")), ",", CsvField(row.member), ",",
                    row.kind, ",", row.amount.ToString(), ",", EntryStatusName(row.status), ",",
                    row.action ? ActionName(*row.action) : "", ",", row.clawback ? "yes" : "", ",",
                    FormatTimestamp(row.at, zone), ",", CsvField(row.explanation), "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "ledger.csv", text));

  text = "member,status,amount\n";
  for (const BalanceRow& row : balances) {
    absl::StrAppend(&text, CsvField(row.member), ",", EntryStatusName(row.status), ",",
                    row.amount.ToString(), "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "balances.csv", text));

  text = "check,member,order\n";
  for (const Flag& flag : flags) {
    absl::StrAppend(&text, flag.check, ",", CsvField(flag.member), ",",
                    CsvField(flag.order.value_or("")), "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "flags.csv", text));

  text = "source,line,code,message\n";
  for (const Rejection& r : rejected) {
    absl::StrAppend(&text, CsvField(r.source), ",", r.line, ",", r.code, ",", CsvField(r.message),
                    "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "errors.csv", text));

  REFPAY_ASSIGN_OR_RETURN(std::string summary, Summary(engine, ledger, balances, flags, rejected,
                                                       lint, applied, seconds, as_of));
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "summary.txt", summary));
  if (!options.quiet) std::cout << summary;
  return absl::OkStatus();
}

}  // namespace

int Settle(const std::vector<std::string>& args) {
  absl::StatusOr<Options> options = ParseOptions(args);
  if (!options.ok()) {
    std::cerr << "refpay settle: " << options.status().message() << "\n";
    return 2;
  }
  auto fail = [](const absl::Status& status) {
    std::cerr << "refpay settle: " << status.message() << "\n";
    return 2;
  };
  absl::StatusOr<Policy> policy = Policy::FromFile(options->policy);
  if (!policy.ok()) {
    std::cerr << "refpay settle: " << ErrorCodeOf(policy.status()) << ": "
              << policy.status().message() << "\n";
    return 2;
  }
  const std::vector<LintFinding> lint = LintPolicy(*policy);
  const std::string input = options->events.empty() ? "csv" : "jsonl";
  const bool checkpoints = !options->state.empty();
  std::vector<InputFile> files;
  std::optional<State> resumed;
  if (checkpoints) {
    absl::StatusOr<std::vector<InputFile>> fingerprints = InputFiles(*options);
    if (!fingerprints.ok()) return fail(fingerprints.status());
    files = *std::move(fingerprints);
    absl::StatusOr<std::optional<State>> state = ReadState(options->state);
    if (!state.ok()) return fail(state.status());
    resumed = *std::move(state);
    if (resumed) {
      if (absl::Status same = SameInputs(*options, *resumed, input, files); !same.ok()) {
        return fail(same);
      }
    }
  }
  Engine engine(*std::move(policy));
  Progress progress;
  if (resumed) {
    absl::StatusOr<Engine> restored = Engine::Restore(resumed->snapshot);
    if (!restored.ok()) {
      return fail(
          absl::DataLossError(absl::StrCat(options->state, ": ", restored.status().message())));
    }
    engine = *std::move(restored);
    progress = std::move(resumed->progress);
    resumed.reset();
  }
  std::vector<Rejection>& rejected = progress.rejected;
  auto reject = [&](Rejection r) {
    if (!options->quiet && rejected.size() < 20) {
      std::cerr << r.source << ":" << r.line << ": " << r.code << ": " << r.message << "\n";
    }
    rejected.push_back(std::move(r));
  };
  const int64_t micros_before = progress.micros;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_micros = [&] {
    return micros_before + std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count();
  };
  // Every `checkpoint_every` events the state file is replaced by the
  // engine snapshot and the position of the next event. Outputs are written
  // only at the end; a crash while writing them resumes from the last
  // checkpoint and writes the same bytes.
  int64_t since_checkpoint = 0;
  auto checkpoint = [&]() -> absl::Status {
    since_checkpoint = 0;
    progress.micros = elapsed_micros();
    State state{input, files, std::move(progress), engine.Snapshot()};
    absl::Status written = WriteAtomically(options->state, EncodeState(state));
    progress = std::move(state.progress);
    return written;
  };
  auto after_event = [&]() -> absl::Status {
    if (!checkpoints || ++since_checkpoint < options->checkpoint_every) return absl::OkStatus();
    return checkpoint();
  };
  if (!options->events.empty()) {
    std::ifstream in(options->events, std::ios::binary);
    if (!in) {
      std::cerr << "refpay settle: " << options->events << ": cannot open file\n";
      return 2;
    }
    if (progress.position > 0) {
      if (!options->quiet) {
        std::cerr << "refpay settle: resuming from " << options->state << " at line "
                  << progress.line + 1 << " of " << options->events << " (" << progress.applied
                  << " applied, " << rejected.size() << " rejected so far)\n";
      }
      in.seekg(progress.position);
    }
    std::string line;
    while (std::getline(in, line)) {
      ++progress.line;
      // The last line may lack its newline.
      progress.position += static_cast<int64_t>(line.size()) + (in.eof() ? 0 : 1);
      if (line.empty() || line.find_first_not_of(" \t\r") == std::string::npos) continue;
      absl::Status status = engine.ApplyJson(line);
      if (status.ok()) {
        ++progress.applied;
      } else {
        reject(
            {options->events, progress.line, ErrorCodeOf(status), std::string(status.message())});
      }
      if (absl::Status saved = after_event(); !saved.ok()) return fail(saved);
    }
    if (in.bad()) return fail(absl::DataLossError(absl::StrCat(options->events, ": read failed")));
  } else {
    std::vector<Rejection> csv_rejected;
    absl::StatusOr<std::vector<SourcedEvent>> events = EventsFromCsv(*options, &csv_rejected);
    if (!events.ok()) return fail(events.status());
    // Rows rejected while reading are recorded once, by the first run.
    if (progress.position == 0) {
      for (Rejection& r : csv_rejected) reject(std::move(r));
    } else if (!options->quiet) {
      std::cerr << "refpay settle: resuming from " << options->state << " at event "
                << progress.position + 1 << " of " << events->size() << " (" << progress.applied
                << " applied, " << rejected.size() << " rejected so far)\n";
    }
    if (progress.position > static_cast<int64_t>(events->size())) {
      return fail(absl::DataLossError(absl::StrCat(options->state, ": position ", progress.position,
                                                   " is past the ", events->size(),
                                                   " events of the CSV input")));
    }
    for (auto i = static_cast<size_t>(progress.position); i < events->size(); ++i) {
      const SourcedEvent& e = (*events)[i];
      absl::Status status = engine.Apply(e.event);
      if (status.ok()) {
        ++progress.applied;
      } else {
        reject({e.source, e.line, ErrorCodeOf(status), std::string(status.message())});
      }
      progress.position = static_cast<int64_t>(i + 1);
      if (absl::Status saved = after_event(); !saved.ok()) return fail(saved);
    }
  }
  const double seconds = static_cast<double>(elapsed_micros()) / 1e6;
  if (!options->quiet && rejected.size() > 20) {
    std::cerr << "… " << rejected.size() - 20 << " more rejected lines in errors.csv\n";
  }
  absl::Status written = WriteOutputs(*options, engine, rejected, lint, progress.applied, seconds);
  if (!written.ok()) return fail(written);
  if (checkpoints) {
    // Every output is in place: the run is complete, its state is spent.
    std::error_code error;
    std::filesystem::remove(options->state, error);
    if (error) {
      return fail(absl::DataLossError(absl::StrCat(options->state, ": ", error.message())));
    }
  }
  return 0;
}

}  // namespace refpay::cli
