// SHA-256 (via OpenSSL) for pinning downloaded data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace anetrain {

std::string sha256_hex(const uint8_t* data, size_t n);

}  // namespace anetrain
