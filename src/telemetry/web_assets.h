// The dashboard page (web/: HTML, JS, CSS and the uPlot chart library from npm), compiled into
// the binary by src/CMakeLists.txt so the page works offline and without the source tree.
#pragma once
#include <cstddef>
#include <string_view>

namespace anetrain {

struct WebAsset {
  std::string_view path;  // URL path, e.g. "/app.js"
  std::string_view mime;
  std::string_view body;
};

// nullptr for anything that is not one of the page's files.
const WebAsset* find_web_asset(std::string_view path);
// False when the build found no chart library (web/node_modules missing: `npm ci --prefix web`).
bool web_page_built();

}  // namespace anetrain
