#!/usr/bin/env python3
"""Generates the seed corpora of the fuzz harnesses from the audit cases.

usage: make_corpus.py OUT_DIR CASE_DIR...

Writes OUT_DIR/<harness>/<name> for every harness in fuzz/harness.h:
  case         every case file as it is
  policy_json  every case's policy (inline or policy_file), as compact JSON
  policy_toml  the same policies written as TOML, plus examples/policies/*.toml
  event        every event of every case, one JSON object per file
  money        every amount, rate, rounding name and timestamp string found
  engine       deterministic pseudo-random byte strings (the engine harness
               decodes bytes, not text)
File names are content hashes, so re-running the script is idempotent.
"""
import hashlib
import json
import pathlib
import random
import sys

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
MONEY_KEYS = {"amount", "fixed", "rate", "from", "above", "below", "upto", "reward",
              "order_total", "member_month", "budget", "own_spend", "max_share", "at",
              "as_of", "rounding"}


def toml_key(key):
    bare = key and all(c.isalnum() or c in "-_" for c in key) and key.isascii()
    return key if bare else json.dumps(key, ensure_ascii=False)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise ValueError(f"no TOML for {value!r}")


def to_toml(policy):
    """Top-level scalars and inline tables, one key per line (keeps key order)."""
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in policy.items())


def strings_under(value, key=None):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from strings_under(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from strings_under(v, key)
    elif isinstance(value, str) and key in MONEY_KEYS:
        yield value


def write(out, harness, data):
    if isinstance(data, str):
        data = data.encode()
    directory = out / harness
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = pathlib.Path(argv[1])
    counts = {}
    cases = sorted(p for d in argv[2:] for p in pathlib.Path(d).glob("*.json"))
    for path in cases:
        text = path.read_text(encoding="utf-8")
        write(out, "case", text)
        doc = json.loads(text)
        policy = doc.get("policy")
        if policy is None and isinstance(doc.get("policy_file"), str):
            policy_path = path.parent / doc["policy_file"]
            if policy_path.suffix == ".toml":
                write(out, "policy_toml", policy_path.read_text(encoding="utf-8"))
            elif policy_path.exists():
                policy = json.loads(policy_path.read_text(encoding="utf-8"))
        if isinstance(policy, dict):
            write(out, "policy_json", json.dumps(policy, ensure_ascii=False))
            try:
                write(out, "policy_toml", to_toml(policy))
            except ValueError:
                pass  # a policy test with a value TOML cannot hold (null)
        for event in doc.get("events", []):
            write(out, "event", json.dumps(event, ensure_ascii=False))
        for s in strings_under(doc):
            write(out, "money", s)
    for toml in sorted((REPO / "examples" / "policies").glob("*.toml")):
        write(out, "policy_toml", toml.read_text(encoding="utf-8"))
    rng = random.Random(20260301)
    for n in (8, 32, 64, 128, 256, 512, 1024):
        for _ in range(4):
            write(out, "engine", bytes(rng.randrange(256) for _ in range(n)))
    for harness in sorted(p.name for p in out.iterdir() if p.is_dir()):
        counts[harness] = sum(1 for _ in (out / harness).iterdir())
    print("corpus:", ", ".join(f"{h} {n}" for h, n in counts.items()))


if __name__ == "__main__":
    main(sys.argv)
