// `anetrain inspect PATH [--json]`: header and tensor table of an anetrain checkpoint. PATH is
// a .anck file, a step directory (both files) or a run directory (its latest checkpoint).
// Reading verifies every CRC, so a zero exit status means the checkpoint is intact. Names come
// from the file: the table shows them with control characters escaped, --json as \u escapes.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "core/terminal_text.h"
#include "formats/anck.h"
#include "formats/safetensors.h"
#include "train/checkpoint.h"

namespace anetrain {

void add_inspect_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("inspect", "Print (and verify) an anetrain checkpoint's header and tensors");
  struct Options {
    std::string path;
    bool as_json = false;
  };
  const auto o = std::make_shared<Options>();
  cmd->add_option("path", o->path, ".anck file, checkpoint step directory, or run directory")->required();
  cmd->add_flag("--json", o->as_json, "Machine-readable output");
  cmd->callback([&run, o] {
    run = [o] {
      namespace fs = std::filesystem;
      std::vector<std::string> files;
      std::error_code ec;
      if (fs::is_regular_file(o->path, ec)) {
        files.push_back(o->path);
      } else {
        const std::string model = find_model_anck(o->path);
        if (model.empty()) fail(o->path + ": not an anetrain checkpoint, step directory or run directory");
        files.push_back(model);
        const auto step_dir = fs::path(model).parent_path();
        const auto state = step_dir / "state.anck";
        if (fs::exists(state, ec)) {
          files.push_back(state.string());
        } else if (step_dir.filename().string().rfind("step-", 0) == 0) {
          fail(step_dir.string() + ": incomplete checkpoint (state.anck is missing)");
        }
      }
      nlohmann::json all = nlohmann::json::array();
      for (const auto& f : files) {
        AnckReader r(f);
        if (o->as_json) {
          nlohmann::json t = nlohmann::json::array();
          for (const auto& x : r.tensors())
            t.push_back({{"name", x.name}, {"dtype", x.dtype}, {"shape", x.shape}, {"offset", x.offset},
                         {"nbytes", x.nbytes}, {"crc32", x.crc32}});
          all.push_back({{"file", f}, {"kind", r.kind()}, {"meta", r.meta()}, {"tensors", t}});
          continue;
        }
        const auto shown = [](const std::string& s) { return terminal_safe(s, LineBreaks::escape); };
        const std::string meta = r.meta().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        std::printf("%s\n  kind: %s (format version 1, all CRCs verified)\n  meta: %s\n", shown(f).c_str(),
                    shown(r.kind()).c_str(), shown(meta).c_str());
        std::printf("  %-56s %-6s %-16s %12s %10s\n", "tensor", "dtype", "shape", "offset", "crc32");
        for (const auto& x : r.tensors())
          std::printf("  %-56s %-6s %-16s %12llu %08x\n", shown(x.name).c_str(), shown(x.dtype).c_str(),
                      shape_str(x.shape).c_str(), (unsigned long long)x.offset, x.crc32);
      }
      // ASCII only: C1 controls become \u0080…\u009f like the C0 ones; a file name that is not
      // UTF-8 shows U+FFFD instead of failing the dump.
      if (o->as_json) std::cout << all.dump(2, ' ', true, nlohmann::json::error_handler_t::replace) << "\n";
      return 0;
    };
  });
}

}  // namespace anetrain
