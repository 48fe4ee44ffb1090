/* MIL programs through the C API, on the seed's own programs (shared/reference/mil):
 *  - tiny-mha/woFwd (a dynamic matmul, no weights) with inputs on a 1/16 grid: every product and
 *    sum is exact in fp32, so each output is exactly fp16(Σ x·w), computed here independently;
 *  - static-tiny-mha/qkvBwd (three 1×1 convs over fp16 weight blobs, then two adds) with three
 *    power-of-two entries per column: each conv sum is exact, so the output is exactly
 *    fp16(fp16(fp16(q) + fp16(k)) + fp16(v)) over the weights read straight from the blob files;
 *  - ane-fake gives ane-sim's bits, and a dense input gives `anetrain mil run`'s bits;
 *  - every misuse: bad handles, missing and malformed files, wrong arity, wrong sizes, backends. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* fp32 → fp16 bits, round to nearest even (subnormals kept), written from the IEEE definition. */
static uint16_t f2h(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, m = x & 0x7fffffu;
  const int e = (int)((x >> 23) & 0xff);
  if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
  const int exp = e - 127 + 15;
  if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
  uint32_t h, rem, half;
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    const int shift = 14 - exp;
    const uint32_t full = m | 0x800000u;
    h = full >> shift, rem = full & ((1u << shift) - 1), half = 1u << (shift - 1);
  } else {
    h = ((uint32_t)exp << 10) | (m >> 13), rem = m & 0x1fffu, half = 0x1000u;
  }
  if (rem > half || (rem == half && (h & 1))) ++h; /* a carry into the exponent is correct too */
  return (uint16_t)(sign | h);
}

static float h2f(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000) ? -v : v;
}

static float r16(double v) { return h2f(f2h((float)v)); }

static long read_file(const char* path, unsigned char* buf, long cap) {
  FILE* f = fopen(path, "rb");
  if (!f) return -1;
  const long n = (long)fread(buf, 1, (size_t)cap, f);
  fclose(f);
  return n;
}

static int write_file(const char* path, const void* bytes, size_t n) {
  FILE* f = fopen(path, "wb");
  if (!f) return 0;
  const int ok = fwrite(bytes, 1, n, f) == n;
  return fclose(f) == 0 && ok;
}

/* A seed blob file: 64-byte header, one 64-byte chunk header, fp16 data at byte 128. */
static int read_blob(const char* path, float* out, int n) {
  static unsigned char buf[1 << 16];
  if (read_file(path, buf, sizeof buf) != 128 + 2 * n) return 0;
  for (int i = 0; i < n; ++i) out[i] = h2f((uint16_t)(buf[128 + 2 * i] | buf[129 + 2 * i] << 8));
  return 1;
}

/* An fp16 .npy of shape (1, C, 1, W), version 1, header padded to 64 bytes. */
static int write_npy_f16(const char* path, int C, int W, const float* v) {
  static unsigned char buf[1 << 16];
  char dict[128];
  int len = snprintf(dict, sizeof dict, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, %d, 1, %d), }", C, W);
  const int hlen = ((10 + len + 1 + 63) / 64) * 64 - 10;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)(hlen & 0xff), buf[9] = (unsigned char)(hlen >> 8);
  memset(buf + 10, ' ', (size_t)hlen);
  memcpy(buf + 10, dict, (size_t)len);
  buf[10 + hlen - 1] = '\n';
  for (int i = 0; i < C * W; ++i) {
    const uint16_t h = f2h(v[i]);
    buf[10 + hlen + 2 * i] = (unsigned char)(h & 0xff), buf[11 + hlen + 2 * i] = (unsigned char)(h >> 8);
  }
  return write_file(path, buf, (size_t)(10 + hlen + 2 * C * W));
}

/* The fp16 data of a version-1 .npy holding exactly n elements. */
static int read_npy_f16(const char* path, uint16_t* out, int n) {
  static unsigned char buf[1 << 16];
  const long size = read_file(path, buf, sizeof buf);
  if (size < 10 || memcmp(buf, "\x93NUMPY\x01", 7) != 0) return 0;
  const int hlen = buf[8] | buf[9] << 8;
  if (size != 10 + hlen + 2L * n || !strstr((const char*)buf + 10, "'<f2'")) return 0;
  for (int i = 0; i < n; ++i) out[i] = (uint16_t)(buf[10 + hlen + 2 * i] | buf[11 + hlen + 2 * i] << 8);
  return 1;
}

static int run(anetrain_mil* m, const float* in, size_t n_in, float* out, size_t cap) {
  size_t n = cap;
  return anetrain_mil_run(m, in, n_in, out, &n) == ANETRAIN_OK && n == cap;
}

static void test_wo_fwd(const char* ref) {
  enum { C = 64, W = 96, T = 32, O = 64 };
  static float x[C * W], y[O * T], y_fake[O * T];
  char prog[1024];
  snprintf(prog, sizeof prog, "%s/tiny-mha/woFwd.mil", ref);
  anetrain_mil *m = NULL, *fake = NULL;
  CHECK(anetrain_mil_compile("ane-sim", prog, NULL, &m) == ANETRAIN_OK && m, "compile the seed's woFwd on ane-sim");
  int64_t dims[8];
  size_t rank = 8, count = 0;
  CHECK(anetrain_mil_shape(m, 0, dims, &rank, &count) == ANETRAIN_OK && rank == 4 && dims[0] == 1 && dims[1] == C &&
            dims[2] == 1 && dims[3] == W && count == C * W,
        "woFwd's input is [1,64,1,96], 6144 elements");
  rank = 8;
  CHECK(anetrain_mil_shape(m, 1, dims, &rank, &count) == ANETRAIN_OK && rank == 4 && dims[1] == O && dims[3] == T &&
            count == O * T,
        "woFwd's output is [1,64,1,32], 2048 elements");
  /* x[c, t] activations in columns [0, 32), staged Wo^T in [32, 96): multiples of 1/16 in (-1, 1);
   * about a quarter of the sums need more than fp16's 11 bits, so the rounding is checked too. */
  for (int c = 0; c < C; ++c)
    for (int w = 0; w < W; ++w) x[c * W + w] = (float)((c * 7 + w * 3) % 31 - 15) / 16.0f;
  CHECK(run(m, x, C * W, y, O * T), "run woFwd");
  int exact = 0;
  for (int o = 0; o < O; ++o)
    for (int t = 0; t < T; ++t) {
      double s = 0;
      for (int c = 0; c < C; ++c) s += (double)x[c * W + t] * x[c * W + T + o];
      exact += y[o * T + t] == r16(s);
    }
  CHECK(exact == O * T, "woFwd: every output is exactly fp16(sum over c of x[c,t] * x[c,32+o])");
  CHECK(anetrain_mil_compile("ane-fake", prog, NULL, &fake) == ANETRAIN_OK && run(fake, x, C * W, y_fake, O * T) &&
            memcmp(y, y_fake, sizeof y) == 0,
        "woFwd on ane-fake (the hardware runtime's sequence) gives ane-sim's bits");
  anetrain_mil_free(fake);
  anetrain_mil_free(m);
}

/* Builds the input of qkvBwd: dq, dk, dv blocks of [64, 32]; sparse with 1, -0.5, 2 per column. */
static void qkv_input(float* x) {
  memset(x, 0, sizeof(float) * 192 * 32);
  const float v[3] = {1.0f, -0.5f, 2.0f};
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 32; ++t)
      for (int j = 0; j < 3; ++j) x[(b * 64 + (t * 5 + b * 11 + j * 21) % 64) * 32 + t] = v[j];
}

static void test_qkv_bwd(const char* ref, const char* anetrain, const char* work) {
  enum { D = 64, T = 32 };
  static float x[3 * D * T], y[D * T], y2[D * T], y_fake[D * T], w[3][D * D];
  static uint16_t cli[D * T];
  char dir[512], prog[1024], path[1024], cmd[4096];
  snprintf(dir, sizeof dir, "%s/static-tiny-mha", ref);
  snprintf(prog, sizeof prog, "%s/qkvBwd.mil", dir);
  const char* names[3] = {"wqt", "wkt", "wvt"};
  int blobs = 1;
  for (int b = 0; b < 3; ++b) {
    snprintf(path, sizeof path, "%s/weights/%s.bin", dir, names[b]);
    blobs &= read_blob(path, w[b], D * D);
  }
  CHECK(blobs, "read the three weight blobs of qkvBwd directly");
  anetrain_mil *m = NULL, *fake = NULL, *moved = NULL, *junk = NULL;
  CHECK(anetrain_mil_compile("ane-sim", prog, NULL, &m) == ANETRAIN_OK, "compile qkvBwd: blobs from the program's folder");
  qkv_input(x);
  CHECK(run(m, x, 3 * D * T, y, D * T), "run qkvBwd");
  int exact = 0;
  for (int o = 0; o < D; ++o)
    for (int t = 0; t < T; ++t) {
      float part[3];
      for (int b = 0; b < 3; ++b) {
        double s = 0; /* 1×1 conv, weight [out, in]: y[o, t] = Σ_i W[o, i] x[i, t] */
        for (int i = 0; i < D; ++i) s += (double)w[b][o * D + i] * x[(b * D + i) * T + t];
        part[b] = r16(s);
      }
      exact += y[o * T + t] == r16((double)r16((double)part[0] + part[1]) + part[2]);
    }
  CHECK(exact == D * T, "qkvBwd: every output is exactly fp16(fp16(Wq^T dq + Wk^T dk) + Wv^T dv) over the blob weights");

  /* The same program away from its weights: @model_path must be named. */
  static unsigned char text[1 << 16];
  const long n = read_file(prog, text, sizeof text);
  snprintf(path, sizeof path, "%s/qkv_alone.mil", work);
  CHECK(n > 0 && write_file(path, text, (size_t)n), "copy qkvBwd.mil away from its weights");
  CHECK(anetrain_mil_compile("ane-sim", path, NULL, &junk) == ANETRAIN_ERR_INPUT && junk == NULL &&
            strstr(anetrain_last_error(), "weights/wqt.bin"),
        "without its weights folder: input error naming the blob file");
  CHECK(anetrain_mil_compile("ane-sim", path, dir, &moved) == ANETRAIN_OK, "weights_dir names the @model_path folder");
  for (int i = 0; i < 3 * D * T; ++i) x[i] = (float)sin(0.7 * i) * (float)(1 + i % 5); /* dense: sums round */
  CHECK(run(moved, x, 3 * D * T, y, D * T) && run(m, x, 3 * D * T, y2, D * T) && memcmp(y, y2, sizeof y) == 0,
        "a dense input: the same bits through either handle (the input buffer is per handle)");
  CHECK(anetrain_mil_compile("ane-fake", path, dir, &fake) == ANETRAIN_OK && run(fake, x, 3 * D * T, y_fake, D * T) &&
            memcmp(y, y_fake, sizeof y) == 0,
        "qkvBwd on ane-fake gives ane-sim's bits");
  snprintf(path, sizeof path, "%s/x.npy", work);
  int ok = write_npy_f16(path, 3 * D, T, x);
  snprintf(cmd, sizeof cmd, "'%s' mil run '%s' --input x='%s/x.npy' -o '%s/y.npy'", anetrain, prog, work, work);
  ok = ok && system(cmd) == 0;
  snprintf(path, sizeof path, "%s/y.npy", work);
  ok = ok && read_npy_f16(path, cli, D * T);
  int same = 0;
  for (int i = 0; ok && i < D * T; ++i) same += f2h(y[i]) == cli[i];
  CHECK(same == D * T, "the C API gives `anetrain mil run`'s output bit for bit (same program, same input)");
  anetrain_mil_free(fake);
  anetrain_mil_free(moved);
  anetrain_mil_free(m);
}

static void test_misuse(const char* ref, const char* work, const char* tok_path) {
  char prog[1024], path[1024];
  snprintf(prog, sizeof prog, "%s/tiny-mha/woFwd.mil", ref);
  anetrain_mil *m = NULL, *junk = NULL;
  static float in[6144], out[2048];
  size_t cap = 2048, rank = 4, count = 0;
  int64_t dims[4];
  CHECK(anetrain_mil_compile("ane-sim", prog, NULL, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL out");
  CHECK(anetrain_mil_compile(NULL, prog, NULL, &junk) == ANETRAIN_ERR_ARGUMENT && !junk, "NULL backend");
  CHECK(anetrain_mil_compile("ane-sim", NULL, NULL, &junk) == ANETRAIN_ERR_ARGUMENT && !junk, "NULL program path");
  CHECK(anetrain_mil_compile("tpu", prog, NULL, &junk) == ANETRAIN_ERR_ARGUMENT && !junk &&
            strstr(anetrain_last_error(), "'tpu'"),
        "an unknown backend is refused by name");
#if !defined(__APPLE__)
  CHECK(anetrain_mil_compile("ane", prog, NULL, &junk) == ANETRAIN_ERR_UNSUPPORTED && !junk &&
            strstr(anetrain_last_error(), "ane-sim"),
        "backend 'ane' off macOS: unsupported, pointing at ane-sim");
#endif
  CHECK(anetrain_mil_compile("ane-sim", "/nonexistent/p.mil", NULL, &junk) == ANETRAIN_ERR_INPUT && !junk &&
            strstr(anetrain_last_error(), "/nonexistent/p.mil"),
        "a missing program: input error naming the file");
  static char text[1 << 16];
  const long n = read_file(prog, (unsigned char*)text, sizeof text - 1);
  text[n > 0 ? n : 0] = 0;
  snprintf(path, sizeof path, "%s/cut.mil", work);
  write_file(path, text, 1200);
  CHECK(anetrain_mil_compile("ane-sim", path, NULL, &junk) == ANETRAIN_ERR_INPUT && !junk &&
            strstr(anetrain_last_error(), "cut.mil:"),
        "a program cut short: input error naming the file (and line)");
  snprintf(path, sizeof path, "%s/garbage.mil", work);
  write_file(path, "\x7f" "ELF not a program\n", 19);
  CHECK(anetrain_mil_compile("ane-fake", path, NULL, &junk) == ANETRAIN_ERR_INPUT && strstr(anetrain_last_error(), "garbage.mil"),
        "garbage: input error naming the file (ane-fake too)");
  /* A second input: the executor contract (and the hardware) takes one. */
  const char* sig = "tensor<fp16, [1, 64, 1, 96]> x)";
  char* at = strstr(text, sig);
  static char two[1 << 16];
  if (at) {
    snprintf(two, sizeof two, "%.*stensor<fp16, [1, 64, 1, 96]> x, tensor<fp16, [1, 64, 1, 96]> x2)%s", (int)(at - text), text,
             at + strlen(sig));
    snprintf(path, sizeof path, "%s/two_inputs.mil", work);
    write_file(path, two, strlen(two));
  }
  CHECK(at && anetrain_mil_compile("ane-sim", path, NULL, &junk) == ANETRAIN_ERR_INPUT && !junk &&
            strstr(anetrain_last_error(), "two_inputs.mil") && strstr(anetrain_last_error(), "2 input(s)"),
        "a two-input program is refused, naming the file and its arity");

  CHECK(anetrain_mil_compile("ane-sim", prog, NULL, &m) == ANETRAIN_OK, "compile woFwd for the misuse checks");
  CHECK(anetrain_mil_shape(m, 2, dims, &rank, &count) == ANETRAIN_ERR_ARGUMENT, "shape of 'which' 2");
  rank = 2;
  CHECK(anetrain_mil_shape(m, 0, dims, &rank, NULL) == ANETRAIN_ERR_BUFFER && rank == 4, "dims of 2: buffer error, rank 4");
  rank = 3;
  CHECK(anetrain_mil_shape(m, 0, NULL, &rank, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL dims with a capacity");
  CHECK(anetrain_mil_shape(m, 1, NULL, NULL, &count) == ANETRAIN_OK && count == 2048, "the count alone");
  CHECK(anetrain_mil_run(m, in, 6143, out, &cap) == ANETRAIN_ERR_ARGUMENT && strstr(anetrain_last_error(), "6144"),
        "an input one short: argument error giving the size");
  CHECK(anetrain_mil_run(m, NULL, 6144, out, &cap) == ANETRAIN_ERR_ARGUMENT, "NULL input");
  CHECK(anetrain_mil_run(m, in, 6144, out, NULL) == ANETRAIN_ERR_ARGUMENT, "NULL output_count");
  cap = 100;
  CHECK(anetrain_mil_run(m, in, 6144, out, &cap) == ANETRAIN_ERR_BUFFER && cap == 2048, "an output of 100: buffer error, 2048 needed");
  cap = 0;
  CHECK(anetrain_mil_run(m, in, 6144, NULL, &cap) == ANETRAIN_ERR_BUFFER && cap == 2048, "asking the size with NULL output");
  cap = 4096;
  CHECK(anetrain_mil_run(m, in, 6144, NULL, &cap) == ANETRAIN_ERR_ARGUMENT, "NULL output with a capacity");
  CHECK(anetrain_mil_run(m, in, 6144, out, &cap) == ANETRAIN_OK && cap == 2048, "a larger output buffer: the count written");

  anetrain_tokenizer* tok = NULL;
  anetrain_model_info info;
  anetrain_tokenizer_load(tok_path, NULL, &tok);
  long long garbage[16] = {7, 7, 7};
  cap = 2048;
  CHECK(anetrain_mil_run(NULL, in, 6144, out, &cap) == ANETRAIN_ERR_HANDLE, "NULL program handle");
  CHECK(tok && anetrain_mil_run((anetrain_mil*)tok, in, 6144, out, &cap) == ANETRAIN_ERR_HANDLE, "a tokenizer passed as a program");
  CHECK(anetrain_mil_shape((anetrain_mil*)garbage, 0, NULL, NULL, &count) == ANETRAIN_ERR_HANDLE, "a pointer to garbage");
  CHECK(anetrain_model_get_info((anetrain_model*)m, &info) == ANETRAIN_ERR_HANDLE, "a program passed as a model");
  anetrain_tokenizer_free(tok);
  anetrain_mil_free(m);
  CHECK(anetrain_mil_run(m, in, 6144, out, &cap) == ANETRAIN_ERR_HANDLE, "a freed program handle");
  CHECK(anetrain_mil_shape(m, 0, NULL, NULL, &count) == ANETRAIN_ERR_HANDLE, "shape of a freed handle");
  anetrain_mil_free(m); /* twice does nothing */
  anetrain_mil_free(NULL);
}

void test_mil(const char* ref, const char* anetrain, const char* work, const char* tok_path) {
  test_wo_fwd(ref);
  test_qkv_bwd(ref, anetrain, work);
  test_misuse(ref, work, tok_path);
}
