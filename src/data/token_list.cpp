#include "data/token_list.h"

#include <cctype>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain {

void TokenList::check_vocab(int V) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] >= V)
      fail_at(path, offsets[i], "token id " + std::to_string(ids[i]) + " (id #" + std::to_string(i) +
                                    ") is outside the model's vocabulary of " + std::to_string(V));
}

TokenList read_token_list(const std::string& path, bool u16) {
  MappedFile f(path);
  TokenList out;
  out.path = path;
  std::vector<int32_t>& ids = out.ids;
  if (u16) {
    if (f.size() % 2) fail_at(path, f.size() - 1, "odd byte count: raw uint16 token files hold 2 bytes per id");
    ids.resize(f.size() / 2);
    for (size_t i = 0; i < ids.size(); ++i) {
      uint16_t v;
      std::memcpy(&v, f.data() + 2 * i, 2);
      ids[i] = v;
      out.offsets.push_back(2 * i);
    }
    return out;
  }
  const uint8_t* p = f.data();
  size_t i = 0, n = f.size();
  while (i < n) {
    if (std::isspace(p[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    int64_t v = 0;
    while (i < n && std::isdigit(p[i])) {
      v = v * 10 + (p[i] - '0');
      if (v > INT32_MAX) fail_at(path, start, "token id is too large");
      ++i;
    }
    if (i == start || (i < n && !std::isspace(p[i])))
      fail_at(path, i, "expected a non-negative integer token id, found '" + std::string(1, char(p[i])) + "'");
    ids.push_back(int32_t(v));
    out.offsets.push_back(start);
  }
  return out;
}

BatchShape infer_batch_shape(size_t n, int B, int T, const std::string& path) {
  if (n < 2) fail(path + ": needs at least 2 token ids (one input and one target), found " + std::to_string(n));
  if (B <= 0 && T <= 0) return {1, int(n) - 1};
  if (B <= 0) {
    if (n % size_t(T + 1)) fail(path + ": " + std::to_string(n) + " ids are not a whole number of rows of T+1 = " + std::to_string(T + 1));
    return {int(n / size_t(T + 1)), T};
  }
  if (T <= 0) {
    if (n % size_t(B) || n / size_t(B) < 2)
      fail(path + ": " + std::to_string(n) + " ids cannot be split into " + std::to_string(B) + " rows of ≥ 2");
    return {B, int(n / size_t(B)) - 1};
  }
  if (n != size_t(B) * size_t(T + 1))
    fail(path + ": holds " + std::to_string(n) + " ids but --batch " + std::to_string(B) + " --seq " +
         std::to_string(T) + " needs B×(T+1) = " + std::to_string(size_t(B) * (T + 1)));
  return {B, T};
}

std::vector<uint8_t> read_loss_mask_rows(const std::string& path, bool u16, const TokenList& tokens, BatchShape bs) {
  const TokenList m = read_token_list(path, u16);
  if (m.ids.size() != tokens.ids.size())
    fail(path + ": holds " + std::to_string(m.ids.size()) + " mask values but " + tokens.path + " holds " +
         std::to_string(tokens.ids.size()) + " token ids (one value per id)");
  for (size_t i = 0; i < m.ids.size(); ++i)
    if (m.ids[i] > 1) fail_at(path, m.offsets[i], "mask value " + std::to_string(m.ids[i]) + " is neither 0 nor 1");
  std::vector<uint8_t> rows(size_t(bs.B) * bs.T);
  for (int b = 0; b < bs.B; ++b)
    for (int t = 0; t < bs.T; ++t) rows[size_t(b) * bs.T + t] = uint8_t(m.ids[size_t(b) * (bs.T + 1) + t + 1]);
  return rows;
}

}  // namespace anetrain
