#!/usr/bin/env python3
"""Runs sqldef's public test cases through the tenantctl binary and prints the pass rate per engine.

Two oracles, both judged by the engine's own dump (pg_dump, mysqldump, sqlite3 .schema):

converge  Put the case's `current` schema in a tenant database, declare its `desired` schema as the
          blueprint, `reconcile --apply --allow-destructive`, then compare the tenant's dump with the
          dump of a database built fresh from `desired` (column order aside). A case passes when the
          dumps are equal and a second plan is empty. A plan that says "in sync" while the dumps
          differ (before or after the apply) is a FALSE IN SYNC, the worst failure.
dump      Use the dump of a database built from `desired`, exactly as the tool prints it with its
          default options, as the blueprint, and plan against a database built from `desired`:
          passes when the plan is empty ("dumps are blueprints").

A case is skipped only when the server itself rejects its `desired` (or `current`) schema.

What the comparison leaves aside (everything else a dump prints counts):
- every engine: column order (the items of a CREATE TABLE are sorted), statement order, whitespace,
  tenantctl's own `_tenantctl_history` table;
- postgres: `--` comments, psql meta-commands, `SET x = …` and `set_config` header lines;
- mysql: session `SET` lines (`/*!NNNNN SET … */`), the sandbox first line, `AUTO_INCREMENT=` counters, the
  database's own name as a qualifier, version-comment wrappers, and an event's `STARTS`, which defaults to
  when the event was created (so an explicit `STARTS` difference is not seen here either);
- sqlite: keyword and identifier case, simple identifier quoting, and `AS (expr) VIRTUAL` spelled `AS (expr)`,
  since SQLite keeps each CREATE as typed and treats these as one schema.

    scripts/corpus/run.py                          # every engine, both oracles
    scripts/corpus/run.py --engine postgres --mode converge --filter Index -v
    scripts/corpus/run.py --engine sqlite --show CASE_ID   # one case's commands, outputs and dumps

The servers come from `scripts/services.sh` (TENANTCTL_TEST_PG_URL, TENANTCTL_TEST_MYSQL_URL);
the binary is target/debug/tenantctl unless --bin says otherwise (it is built first with cargo).
The corpus is vendored in scripts/corpus/sqldef/ (MIT, see its LICENSE).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "sqldef"
ENGINES = ("postgres", "mysql", "sqlite")
HISTORY = "_tenantctl_history"


# --------------------------------------------------------------------------- results


@dataclass
class Outcome:
    case: str
    mode: str
    status: str  # pass | fail | false-in-sync | skip
    reason: str = ""
    detail: str = ""
    log: list[str] = field(default_factory=list)


def run(cmd, *, input=None, env=None, timeout=120):
    """Runs a command; returns (exit code, stdout+stderr)."""
    try:
        p = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout}s: {' '.join(cmd)}"


# --------------------------------------------------------------------------- normalising dumps


def scan(text: str):
    """Yields (index, character, depth) for each character outside quotes, where
    depth counts the parentheses open before it."""
    depth, quote = 0, None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
            continue
        if ch == ")":
            depth -= 1
        yield i, ch, depth
        if ch == "(":
            depth += 1


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Splits on `sep` outside parentheses and quotes."""
    cuts = [i for i, ch, depth in scan(text) if ch == sep and depth == 0]
    bounds = zip([-1, *cuts], [*cuts, len(text)])
    return [p for p in (text[a + 1:b].strip() for a, b in bounds) if p]


def sort_table_body(statement: str) -> str:
    """`CREATE TABLE x (a, b, c) rest` with its top-level items sorted: column order aside."""
    if not re.match(r"(?is)^create\s+(?:temporary\s+)?table\s", statement):
        return statement
    parens = [(i, ch) for i, ch, depth in scan(statement) if depth == 0 and ch in "()"]
    if len(parens) < 2 or parens[0][1] != "(" or parens[1][1] != ")":
        return statement
    start, end = parens[0][0], parens[1][0]
    items = sorted(split_top_level(statement[start + 1:end]))
    return f"{statement[:start].strip()} ({', '.join(items)}){statement[end + 1:]}"


def split_statements(text: str) -> list[str]:
    """Splits a dump into statements on `;` at the end of a line (and DELIMITER blocks)."""
    out, cur, delimiter = [], [], ";"
    for line in text.splitlines():
        stripped = line.strip()
        m = re.match(r"(?i)^delimiter\s+(\S+)$", stripped)
        if m:
            delimiter = m.group(1)
            continue
        cur.append(line)
        if stripped.endswith(delimiter):
            statement = "\n".join(cur).strip()
            out.append(statement[: -len(delimiter)].strip())
            cur = []
    if "".join(cur).strip():
        out.append("\n".join(cur).strip())
    return [s for s in out if s]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def normalise_postgres(dump: str) -> list[str]:
    lines = []
    for line in dump.splitlines():
        s = line.strip()
        if not s or s.startswith("--") or s.startswith("\\"):
            continue
        if re.match(r"^SET \w+ = ", s) or s.startswith("SELECT pg_catalog.set_config("):
            continue
        lines.append(line)
    statements = []
    for st in split_statements("\n".join(lines)):
        st = squash(st)
        if HISTORY in st:
            continue
        statements.append(sort_table_body(st))
    return sorted(statements)


def normalise_mysql(dump: str, database: str) -> list[str]:
    lines = []
    for line in dump.splitlines():
        s = line.strip()
        if not s or s.startswith("--"):
            continue
        if re.match(r"^/\*!\d+ SET .*\*/\s*;$", s) or s.startswith("/*M!999999"):
            continue
        lines.append(line)
    statements = []
    for st in split_statements("\n".join(lines)):
        st = squash(st)
        if HISTORY in st:
            continue
        st = re.sub(r" AUTO_INCREMENT=\d+", "", st)
        st = st.replace(f"`{database}`.", "")
        # An event's STARTS defaults to the time it was created.
        st = re.sub(r" STARTS '[^']*'", "", st)
        st = re.sub(r"^/\*!\d+ (.*) \*/$", r"\1", st)
        st = re.sub(r"/\*!\d+ ([^*]*)\*/", r"\1", st)
        statements.append(sort_table_body(squash(st)))
    return sorted(statements)


SQLITE_IDENT = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"|`([A-Za-z_][A-Za-z0-9_]*)`|\[([A-Za-z_][A-Za-z0-9_]*)\]')


def canonical_sqlite(statement: str) -> str:
    """SQLite keeps the CREATE text as written: compare it case- and space-insensitively
    outside string literals, with simple quoted identifiers unquoted."""
    out, i = [], 0
    parts = re.split(r"('(?:[^']|'')*')", statement)
    for n, part in enumerate(parts):
        if n % 2 == 1:
            out.append(part)
            continue
        part = SQLITE_IDENT.sub(lambda m: m.group(1) or m.group(2) or m.group(3), part)
        part = part.lower()
        part = re.sub(r"\s+", " ", part)
        part = re.sub(r"\s*([(),])\s*", r"\1", part)
        out.append(part)
    text = "".join(out).strip()
    text = re.sub(r"^create table if not exists ", "create table ", text)
    # `AS (expr)` is VIRTUAL unless it says STORED: the same column either way.
    text = re.sub(r"\bas\((.*?)\)virtual\b", r"as(\1)", text)
    return sort_table_body(text.replace("(", " (", 1) if text.startswith("create table") else text)


def normalise_sqlite(dump: str) -> list[str]:
    statements = []
    for st in split_statements(dump):
        s = st.strip()
        if not s or HISTORY in s or re.match(r'(?i)^create table (if not exists )?"?sqlite_', s):
            continue
        statements.append(canonical_sqlite(s))
    return sorted(statements)


# --------------------------------------------------------------------------- engines


class Engine:
    """One engine's databases as the harness sees them: made, filled and dumped with the
    engine's own client, never through tenantctl."""

    name: str

    def __init__(self, work: Path):
        self.work = work

    def create(self, db): ...
    def drop(self, db): ...
    def client(self, db, sql) -> tuple[int, str]: ...
    def dump(self, db) -> str: ...
    def normalise(self, dump, db) -> list[str]: ...
    def server_yaml(self) -> str: ...

    def load(self, db, sql):
        """Runs `sql` on `db` with the engine's client: (whether the server accepted it, output)."""
        if not sql.strip():
            return True, ""
        code, out = self.client(db, sql)
        return code == 0, out

    def tenantctl_env(self):
        return dict(os.environ)


class ServerEngine(Engine):
    """An engine with a server: one URL from the environment, databases made and dropped
    through its maintenance connection, dumped with its dump tool."""

    url_variable: str
    default_url: str
    maintenance_db: str | None
    quote: str

    def __init__(self, work: Path):
        super().__init__(work)
        self.url = os.environ.get(self.url_variable, self.default_url)
        self.parts = urllib.parse.urlsplit(self.url)

    def admin(self, sql):
        code, out = self.client(self.maintenance_db, sql)
        if code:
            raise RuntimeError(out)

    def create(self, db):
        self.admin(f"{self.drop_statement(db)} CREATE DATABASE {self.quote}{db}{self.quote};")

    def drop(self, db):
        try:
            self.admin(self.drop_statement(db))
        except RuntimeError:
            pass  # cleanup: a database that cannot be dropped is left, never fatal

    def drop_statement(self, db):
        return f"DROP DATABASE IF EXISTS {self.quote}{db}{self.quote};"

    def dump(self, db):
        code, out = run(self.dump_command(db), env=self.env)
        if code:
            raise RuntimeError(out)
        return out

    def server_yaml(self):
        return f"    engine: {self.name}\n    url: \"${{CORPUS_URL}}\"\n"

    def tenantctl_env(self):
        return dict(os.environ, CORPUS_URL=self.url)


class Postgres(ServerEngine):
    name = "postgres"
    url_variable = "TENANTCTL_TEST_PG_URL"
    default_url = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
    maintenance_db = "postgres"
    quote = '"'

    def __init__(self, work: Path):
        super().__init__(work)
        u = self.parts
        self.env = dict(os.environ, PGHOST=u.hostname or "127.0.0.1", PGPORT=str(u.port or 5432),
                        PGUSER=urllib.parse.unquote(u.username or "postgres"),
                        PGPASSWORD=urllib.parse.unquote(u.password or ""))

    def client(self, db, sql):
        return run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-"], input=sql, env=self.env)

    def drop_statement(self, db):
        return f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE);'

    def dump_command(self, db):
        return ["pg_dump", "--schema-only", "-d", db]

    def normalise(self, dump, db):
        return normalise_postgres(dump)


class Mysql(ServerEngine):
    name = "mysql"
    url_variable = "TENANTCTL_TEST_MYSQL_URL"
    default_url = "mysql://root:root@127.0.0.1:3306"
    maintenance_db = None
    quote = "`"

    def __init__(self, work: Path):
        super().__init__(work)
        u = self.parts
        self.args = ["-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306),
                     "-u", urllib.parse.unquote(u.username or "root")]
        self.env = dict(os.environ, MYSQL_PWD=urllib.parse.unquote(u.password or ""))

    def client(self, db, sql):
        # The session character set is stored with triggers and routines: load as tenantctl connects.
        database = [db] if db else []
        return run(["mysql", *self.args, "--default-character-set=utf8mb4", *database], input=sql, env=self.env)

    def dump_command(self, db):
        return ["mysqldump", *self.args, "--no-data", "--routines", "--triggers", "--events",
                "--skip-dump-date", db]

    def normalise(self, dump, db):
        return normalise_mysql(dump, db)


class Sqlite(Engine):
    name = "sqlite"

    def path(self, db):
        return self.work / "data" / f"{db}.db"

    def create(self, db):
        self.path(db).parent.mkdir(parents=True, exist_ok=True)
        self.path(db).unlink(missing_ok=True)

    def drop(self, db):
        self.path(db).unlink(missing_ok=True)

    def client(self, db, sql):
        code, out = run(["sqlite3", "-bail", str(self.path(db))], input=sql)
        return (code or int("Error" in out)), out

    def dump(self, db):
        if not self.path(db).exists():
            return ""
        code, out = run(["sqlite3", str(self.path(db)), ".schema"])
        if code:
            raise RuntimeError(out)
        return out

    def normalise(self, dump, db):
        return normalise_sqlite(dump)

    def server_yaml(self):
        return f"    engine: sqlite\n    path: {self.work / 'data'}\n"


ENGINE_CLASSES = {"postgres": Postgres, "mysql": Mysql, "sqlite": Sqlite}


# --------------------------------------------------------------------------- one case


def write_repo(directory: Path, engine: Engine, blueprint: str, tenant: str, schema: str):
    (directory / "blueprints" / blueprint).mkdir(parents=True, exist_ok=True)
    (directory / "tenants").mkdir(exist_ok=True)
    (directory / "tenantctl.yaml").write_text("servers:\n  corpus:\n" + engine.server_yaml())
    (directory / "blueprints" / blueprint / "blueprint.yaml").write_text(
        f"engine: {engine.name}\nserver: corpus\npolicy:\n  allow_destructive: true\n")
    (directory / "blueprints" / blueprint / "schema.sql").write_text(schema)
    (directory / "tenants" / "corpus.yaml").write_text(
        f"tenants:\n  - name: {tenant}\n    databases:\n      - blueprint: {blueprint}\n")


def tenantctl(args, binary, repo: Path, engine: Engine, log: list[str]):
    cmd = [str(binary), "--repo", str(repo), "--color", "never", *args]
    code, out = run(cmd, env=engine.tenantctl_env(), timeout=300)
    log.append(f"$ tenantctl {' '.join(args)}  → exit {code}\n{out.rstrip()}")
    return code, out


def first_lines(text: str, n: int = 6) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return " | ".join(lines[:n])[:400]


def dump_diff(a: list[str], b: list[str]) -> str:
    only_a = [s for s in a if s not in b]
    only_b = [s for s in b if s not in a]
    parts = [f"- {s[:300]}" for s in only_a[:4]] + [f"+ {s[:300]}" for s in only_b[:4]]
    return "\n".join(parts)


def run_case(case: dict, mode: str, engine: Engine, binary: Path, index: int, run_id: str) -> Outcome:
    blueprint = f"k{run_id}"
    tenant = f"c{index}{mode[0]}"
    tenant_db = f"{blueprint}__{tenant}"
    ref_db = f"{blueprint}_r{index}{mode[0]}"
    repo = engine.work / f"repo_{index}_{mode}"
    log: list[str] = []
    out = Outcome(case["id"], mode, "fail", log=log)
    try:
        engine.create(ref_db)
        ok, text = engine.load(ref_db, case["desired"])
        if not ok:
            out.status, out.reason = "skip", "server rejects desired: " + first_lines(text, 2)
            return out
        ref_dump = engine.dump(ref_db)
        ref = engine.normalise(ref_dump, ref_db)
        engine.create(tenant_db)
        if mode == "converge":
            ok, text = engine.load(tenant_db, case["current"])
            if not ok:
                out.status, out.reason = "skip", "server rejects current: " + first_lines(text, 2)
                return out
            write_repo(repo, engine, blueprint, tenant, case["desired"])
            before = engine.normalise(engine.dump(tenant_db), tenant_db)
            code, text = tenantctl(["reconcile", "--plan", "--detailed-exitcode"], binary, repo, engine, log)
            if code == 0 and before != ref:
                out.status, out.reason = "false-in-sync", "plan says in sync before apply"
                out.detail = dump_diff(before, ref)
                return out
            if code not in (0, 2):
                out.reason, out.detail = "plan failed", first_lines(text)
                return out
            code, text = tenantctl(["reconcile", "--apply", "--allow-destructive", "--allow-dirty"],
                                   binary, repo, engine, log)
            if code != 0:
                out.reason, out.detail = "apply failed", first_lines(text)
                # Still judged below: a false "in sync" after a failure is worse.
            after = engine.normalise(engine.dump(tenant_db), tenant_db)
            code2, text2 = tenantctl(["reconcile", "--plan", "--detailed-exitcode"], binary, repo, engine, log)
            if code2 == 0 and after != ref:
                out.status, out.reason = "false-in-sync", "plan says in sync after apply"
                out.detail = dump_diff(after, ref)
                return out
            if code != 0:
                return out
            if after != ref:
                out.reason, out.detail = "dumps differ", dump_diff(after, ref)
                return out
            if code2 != 0:
                out.reason, out.detail = "not converged: second plan not empty", first_lines(text2)
                return out
            out.status = "pass"
            return out
        # mode == "dump": the tool's dump of desired is the blueprint of a database built from desired.
        ok, text = engine.load(tenant_db, case["desired"])
        if not ok:
            out.status, out.reason = "skip", "server rejects desired twice: " + first_lines(text, 2)
            return out
        write_repo(repo, engine, blueprint, tenant, ref_dump)
        code, text = tenantctl(["reconcile", "--plan", "--detailed-exitcode"], binary, repo, engine, log)
        if code == 0:
            out.status = "pass"
        elif code == 2:
            out.reason, out.detail = "plan not empty", first_lines(text)
        else:
            out.reason, out.detail = "dump refused or plan failed", first_lines(text)
        log.append("--- dump used as blueprint ---\n" + ref_dump)
        return out
    except Exception as e:  # a harness failure is a failure of the case, never a pass
        out.reason, out.detail = "harness error", str(e)[:400]
        return out
    finally:
        if not os.environ.get("CORPUS_KEEP"):
            engine.drop(ref_db)
            engine.drop(tenant_db)
            shutil.rmtree(repo, ignore_errors=True)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=(*ENGINES, "all"), default="all")
    ap.add_argument("--mode", choices=("converge", "dump", "both"), default="both")
    ap.add_argument("--filter", default="", help="only cases whose id contains this text")
    ap.add_argument("--jobs", type=int, default=4, help="cases at once (default 4)")
    ap.add_argument("--bin", type=Path, help="tenantctl binary (default: cargo build, target/debug/tenantctl)")
    ap.add_argument("--show", metavar="CASE_ID", help="run one case and print every command, output and dump")
    ap.add_argument("--json", type=Path, help="also write every outcome to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each failure's detail")
    args = ap.parse_args()

    binary = args.bin
    if binary is None:
        code, out = run(["cargo", "build", "--quiet", "--bin", "tenantctl"], timeout=1800)
        if code:
            print(out, file=sys.stderr)
            return 1
        binary = ROOT / "target" / "debug" / "tenantctl"
    binary = binary.resolve()

    engines = ENGINES if args.engine == "all" else (args.engine,)
    modes = ("converge", "dump") if args.mode == "both" else (args.mode,)
    run_id = f"{os.getpid() % 10000:04d}"
    work = Path(tempfile.mkdtemp(prefix="tenantctl-corpus-"))
    all_outcomes: list[Outcome] = []
    summary_lines = []
    try:
        for engine_name in engines:
            engine = ENGINE_CLASSES[engine_name](work / engine_name)
            engine.work.mkdir(parents=True, exist_ok=True)
            cases = [json.loads(l) for l in (CORPUS / f"{engine_name}.jsonl").read_text().splitlines() if l.strip()]
            cases = [c for c in cases if args.filter in c["id"]]
            if args.show:
                cases = [c for c in cases if c["id"] == args.show]
            for mode in modes:
                started = time.monotonic()
                with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                    outcomes = list(pool.map(
                        lambda ic: run_case(ic[1], mode, engine, binary, ic[0], run_id),
                        enumerate(cases)))
                elapsed = time.monotonic() - started
                all_outcomes.extend(outcomes)
                if args.show:
                    for o in outcomes:
                        print("\n\n".join(o.log))
                        print(f"\n== {o.case} [{mode}]: {o.status} {o.reason}\n{o.detail}")
                    continue
                counts = {s: sum(1 for o in outcomes if o.status == s)
                          for s in ("pass", "fail", "false-in-sync", "skip")}
                judged = counts["pass"] + counts["fail"] + counts["false-in-sync"]
                rate = 100.0 * counts["pass"] / judged if judged else 0.0
                for o in outcomes:
                    if o.status in ("fail", "false-in-sync"):
                        flag = "FALSE-IN-SYNC" if o.status == "false-in-sync" else "FAIL"
                        print(f"{flag} {engine_name} {mode} {o.case}: {o.reason}")
                        if args.verbose and o.detail:
                            print("    " + o.detail.replace("\n", "\n    "))
                line = (f"{engine_name:9} {mode:9} pass {counts['pass']}/{judged} = {rate:.1f}%  "
                        f"false-in-sync {counts['false-in-sync']}  skipped {counts['skip']}  ({elapsed:.0f} s)")
                summary_lines.append(line)
    finally:
        if not os.environ.get("CORPUS_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in all_outcomes], indent=1))
    if summary_lines:
        print("\n" + "\n".join(summary_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
