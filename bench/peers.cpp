// SPDX-License-Identifier: Apache-2.0
// Runs the peer implementations (scikit-learn, scikit-learn-intelex, FAISS, PyTorch) through
// bench/peers.py on the same data, initial centroids, iteration count and thread count as ours.
#include "peers.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

/// Single-quotes a word for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

/// Runs a shell command; returns its stdout and sets *status to the exit status (-1 when it
/// could not be started or did not exit normally).
std::string run_command(const std::string& cmd, int* status) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) {
    *status = -1;
    return out;
  }
  char buf[4096];
  std::size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, got);
  const int raw = pclose(pipe);
  *status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  return out;
}

namespace {

/// The first executable `name` in $PATH's directories, or empty.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  const std::string dirs = path;
  std::size_t begin = 0;
  while (begin <= dirs.size()) {
    std::size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > begin ? dirs.substr(begin, end - begin) : ".";
    const std::string file = dir + "/" + name;
    if (access(file.c_str(), X_OK) == 0) return file;
    begin = end + 1;
  }
  return {};
}

bool can_import_numpy(const std::string& python) {
  int status = 0;
  run_command(shell_quote(python) + " -c 'import numpy' >/dev/null 2>&1", &status);
  return status == 0;
}

/// The last line of `text` that parses as a JSON object, or null.
Json last_json_line(const std::string& text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t begin = text.rfind('\n', end - 1);
    begin = (begin == std::string::npos) ? 0 : begin + 1;
    const std::string line = text.substr(begin, end - begin);
    if (!line.empty() && line[0] == '{') {
      try {
        return Json::parse(line);
      } catch (const std::exception&) {
        // not ours (a library printing braces): keep looking
      }
    }
    if (begin == 0) break;
    end = begin - 1;
  }
  return Json();
}

/// The last non-empty line of a text, trimmed to a table-friendly length.
std::string last_line(const std::string& text) {
  std::size_t end = text.find_last_not_of(" \n\r\t");
  if (end == std::string::npos) return {};
  std::size_t begin = text.rfind('\n', end);
  begin = (begin == std::string::npos) ? 0 : begin + 1;
  std::string line = text.substr(begin, end + 1 - begin);
  if (line.size() > 160) line = line.substr(0, 157) + "...";
  return line;
}

}  // namespace

const std::vector<std::string>& peer_names() {
  static const std::vector<std::string> kNames = {"sklearn", "sklearnex", "faiss", "faiss-gpu",
                                                  "torch"};
  return kNames;
}

std::string resolve_python(const std::string& explicit_python, std::string* log) {
  if (!explicit_python.empty()) {
    if (log) {
      *log = explicit_python + " (--python)";
      if (!can_import_numpy(explicit_python)) *log += ", which has no numpy: every peer will fail";
    }
    return explicit_python;
  }
  struct Candidate {
    std::string command, described;
  };
  std::vector<Candidate> candidates;
  if (const char* env = std::getenv("KMEANS_PYTHON"); env && *env)
    candidates.push_back({env, std::string("$KMEANS_PYTHON (") + env + ")"});
#ifdef KMEANS_BENCH_VENV_PYTHON
  if (access(KMEANS_BENCH_VENV_PYTHON, X_OK) == 0)
    candidates.push_back({KMEANS_BENCH_VENV_PYTHON,
                          std::string("the source tree's venv (") + KMEANS_BENCH_VENV_PYTHON + ")"});
#endif
  const std::string on_path = find_on_path("python3");
  if (!on_path.empty())
    candidates.push_back({"python3", "python3 on PATH (" + on_path + ")"});
  if (on_path != "/usr/bin/python3" && access("/usr/bin/python3", X_OK) == 0)
    candidates.push_back({"/usr/bin/python3", "/usr/bin/python3"});
  std::vector<std::string> without;  // those that could not import numpy
  auto passed_over = [&] {
    std::string s;
    for (std::size_t i = 0; i < without.size(); ++i)
      s += (i == 0 ? "" : i + 1 == without.size() ? " and " : ", ") + without[i];
    return s + (without.size() == 1 ? " has" : " have") + " no numpy";
  };
  for (const auto& c : candidates) {
    if (can_import_numpy(c.command)) {
      if (log) *log = without.empty() ? c.described : passed_over() + "; using " + c.described;
      return c.command;
    }
    without.push_back(c.described);
  }
  if (log) {
    *log = without.empty() ? "no python3 on PATH or at /usr/bin/python3"
                           : passed_over();
    *log += ": the peers cannot run (install numpy, or pass --python or $KMEANS_PYTHON)";
  }
  return {};
}

std::string fallback_python(const std::string& python) {
  const std::string sys = "/usr/bin/python3";
  if (python == sys || access(sys.c_str(), X_OK) != 0 || !can_import_numpy(sys)) return {};
  return sys;
}

namespace {

/// One peer with one interpreter.
PeerResult run_peer(const PeerRequest& req, const std::string& name, const std::string& python,
                    bool have_timeout) {
  PeerResult r;
  r.name = name;
  r.python = python;
  std::string cmd;
  if (have_timeout) cmd = "/usr/bin/timeout " + std::to_string(req.timeout_s) + " ";
  cmd += shell_quote(python) + " " + shell_quote(req.script) + " --peer " + name +
         " --data " + shell_quote(req.data_path) + " --init " + shell_quote(req.init_path) +
         " --iters " + std::to_string(req.iters) + " --threads " + std::to_string(req.threads) +
         " --budget " + std::to_string(req.budget_s) + " 2>&1";
  std::fflush(stdout);
  int status = 0;
  const std::string text = run_command(cmd, &status);
  const Json j = last_json_line(text);
  if (j.is_null()) {
    r.error = status == 124 ? "timed out after " + std::to_string(req.timeout_s) + " s"
                            : "peers.py gave no report (exit " + std::to_string(status) +
                                  "): " + last_line(text);
    return r;
  }
  r.ok = j.get("ok").boolean();
  r.error = j.get("error").string();
  r.device = j.get("device").string();
  r.version = j.get("version").string();
  r.timing_how = j.get("timing").string();
  r.s_per_iter = j.get("s_per_iter").number(0);
  for (const auto& v : j.get("s_per_iter_runs").items()) r.s_per_iter_runs.push_back(v.number(0));
  r.repeats = static_cast<int>(j.get("repeats").number(0));
  if (r.repeats == 0) r.repeats = static_cast<int>(r.s_per_iter_runs.size());
  r.threads = static_cast<int>(j.get("threads").number(0));
  r.blas_name = j.get("blas_name").string();
  r.n_iter = static_cast<int>(j.get("n_iter").number(0));
  r.final_sse = j.get("final_sse").number(0);
  for (const auto& v : j.get("sse_history").items()) r.sse_history.push_back(v.number(0));
  for (const auto& v : j.get("blas").items()) r.blas.push_back(v.string());
  if (r.ok && !(r.s_per_iter > 0)) {
    r.ok = false;
    r.error = "peers.py reported no time per iteration";
  }
  return r;
}

}  // namespace

std::vector<PeerResult> run_peers(const PeerRequest& req) {
  std::vector<PeerResult> out;
  const bool have_timeout = access("/usr/bin/timeout", X_OK) == 0;
  for (const auto& name : peer_names()) {
    if (req.cpu_only && name == "faiss-gpu") continue;
    PeerResult r;
    r.name = name;
    if (req.python.empty()) {
      r.error = "no python with numpy (see the 'peers:' line above)";
      out.push_back(r);
      continue;
    }
    if (access(req.script.c_str(), R_OK) != 0) {
      r.error = "peers script not found: " + req.script + " (use --peers-script PATH)";
      out.push_back(r);
      continue;
    }
    r = run_peer(req, name, req.python, have_timeout);
    // A module the chosen interpreter (e.g. the venv) lacks: Debian's packages instead.
    if (!r.ok && !req.fallback_python.empty() &&
        r.error.find("not importable") != std::string::npos) {
      PeerResult again = run_peer(req, name, req.fallback_python, have_timeout);
      if (again.ok || again.error.find("not importable") == std::string::npos) r = again;
    }
    out.push_back(r);
  }
  return out;
}

Json peer_json(const PeerResult& p) {
  Json j = Json::object();
  j.set("peer", p.name).set("ok", p.ok);
  if (!p.python.empty()) j.set("python", p.python);
  if (!p.ok) {
    j.set("error", p.error);
    return j;
  }
  j.set("device", p.device)
      .set("version", p.version)
      .set("timing", p.timing_how)
      .set("s_per_iter", p.s_per_iter)
      .set("n_iter", p.n_iter)
      .set("threads", p.threads)
      .set("blas_name", p.blas_name)
      .set("final_sse", p.final_sse)
      .set("blas", [&] {
        Json a = Json::array();
        for (const auto& lib : p.blas) a.push(lib);
        return a;
      }());
  set_spread(j, spread_of(p.s_per_iter_runs, p.s_per_iter, p.repeats), p.s_per_iter_runs);
  if (!p.sse_history.empty()) j.set("sse_history", Json(p.sse_history));
  return j;
}

}  // namespace bench
