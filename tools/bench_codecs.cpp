// bench_codecs: every codec on the activations at real cut points of real models, on 1 or more
// threads.
//
// For each model: the planner's own split of the model into K equal-compute stages (K from
// --stages, by the block times profiled on the first --threads value, as `edgepipe run` splits
// it) gives the cut points; the activations there come from running the model's first stages on a
// random-normal input batch (seeded). For each thread count T of --threads (at::set_num_threads:
// zfp chunks, the checksum and the stages' compute all use T threads, as a rank run with
// --threads T does), the stages are timed and, at each cut, each codec encodes and decodes the
// frame of those tensors: --reps timed runs after 2 warm-up runs, median reported. The same run
// checks correctness: lossless codecs must decode bit for bit, lossy ones must decode to the same
// bytes on every thread count, and the error of lossy ones is measured on what they decoded.
//
// Figures (docs/codecs.md defines them): ratio = tensor bytes / encoded tensor bytes (frame
// headers excluded); encode MB/s and decode MB/s = raw tensor megabytes (1e6 bytes) / median
// seconds of FrameEncoder::encode and FrameDecoder::decode of the frame (checksum included);
// max rel = max |x' - x| / max |x|; rel L2 = ||x' - x|| / ||x||. The verdict compares encode +
// decode per frame with the compute time of the stages (optimised, as the pipeline runs them):
// a second table gives, for every cut of every K-stage split, encode + decode ms against the
// compute ms of the stage before the cut (which encodes) and the one after it (which decodes),
// and the codec's cost as a share of the smaller; a third gives each stage's own codec work
// (decode of its input, the model's input for stage 0, + encode of its output) against its
// compute: with `edgepipe run --overlap` the stage's period is the larger of the two.
//
// Usage: bench_codecs --model FILE [--model FILE ...] [--stages 2,3,4] [--threads 1,2]
//                     [--batch 1] [--reps 5] [--codecs "raw;lz4;zfp-rate:8"] [--field-dims]
//                     [--csv FILE] [--seed 1] [--dump DIR] [--input FILE.h5:DATASET]
// --input takes the first --batch samples of an HDF5 dataset as the input batch instead of
// random-normal values (e.g. out/digits/digits.h5:images, the digits CNN's held-out images).
// --dump DIR also writes each codec's frame at each cut to DIR/MODEL-nodeN-CODEC.frame (':' and
// '+' as '_'), e.g. to measure what a general-purpose compressor makes of a plain q4 stream
// (docs/codecs.md, "An entropy stage after q4 or q2?").
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/log.h"
#include "edgepipe/io/h5.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/model/stage.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/wire/frame.h"

using namespace edgepipe;

namespace {

const char* kDefaultCodecs =
    "raw;lz4;zfp-reversible;zfp-reversible+lz4;zfp-rate:16;zfp-rate:8;zfp-rate:8+lz4;zfp-rate:4;"
    "zfp-precision:16;zfp-precision:10;zfp-accuracy:1e-2;zfp-relacc:1e-3;zfp-relacc:1e-2;"
    "zfp-relacc:3e-2;zfp-relacc:3e-2+lz4;q8;q8+lz4;q4;q4+lz4;q2;q2+lz4";

struct Options {
  std::vector<std::string> models;
  std::vector<size_t> stages{2, 3, 4};
  std::vector<int> threads{1};
  std::vector<std::string> codecs;
  int64_t batch = 1;
  int reps = 5;
  bool field_dims = false;  // also compare 1-, 2- and 3-D zfp fields
  std::string csv;
  uint64_t seed = 1;
  std::string dump;   // a directory for the frames, or empty
  std::string input;  // FILE.h5:DATASET, or empty: random normal
};

// The input batch: the first `shape[0]` samples of --input, or seeded random-normal values.
at::Tensor input_batch(const Options& o, std::vector<int64_t> shape) {
  if (o.input.empty()) {
    at::manual_seed(static_cast<int64_t>(o.seed));
    return at::randn(shape);
  }
  const size_t colon = o.input.rfind(':');
  EP_CHECK(colon != std::string::npos, "--input is FILE.h5:DATASET, not '", o.input, "'");
  H5InputDataset data(o.input.substr(0, colon), o.input.substr(colon + 1));
  EP_CHECK(!data.dims().empty() && data.dims()[0] >= shape[0], o.input, " has fewer than ",
           shape[0], " samples");
  shape = data.dims();
  shape[0] = o.batch;
  at::Tensor t = at::empty(shape, at::kFloat);
  data.read_rows(0, o.batch, t.data_ptr<float>());
  return t;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string shapes_of(const std::vector<at::Tensor>& ts) {
  std::string s;
  for (const auto& t : ts) {
    s += s.empty() ? "" : " + ";
    for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "x" : "") + std::to_string(t.size(d));
  }
  return s;
}

struct Row {
  std::string model, shapes, codec;
  size_t node = 0;
  double mb = 0, ratio = 0, enc_mbs = 0, dec_mbs = 0, codec_ms = 0;
  double max_rel = 0, rel_l2 = 0;
  bool exact = false;
  int field_dims = 3;
  int threads = 1;
};

// A cut of a K-stage split, for the table of codec cost against stage compute.
struct CutRow {
  std::string model;
  int threads = 1;
  size_t stages = 0, cut = 0, node = 0;  // cut i (1-based) of a split into `stages` stages
  double before_ms = 0, after_ms = 0;    // compute of the stages before and after the cut
};

// A stage of a K-stage split, for the table of its codec work against its compute.
struct StageRow {
  std::string model;
  int threads = 1;
  size_t stages = 0, stage = 0;  // stage (0-based) of a split into `stages` stages
  size_t in_node = 0;            // the cut it decodes (0: the model's input)
  size_t out_node = 0;           // the cut it encodes (0: the model's output, not measured)
  double compute_ms = 0;
};

// Error of what a codec decoded against the original, over all floating-point tensors.
void measure(const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& out, Row& r) {
  double e2 = 0, x2 = 0, emax = 0, xmax = 0;
  r.exact = true;
  for (size_t i = 0; i < in.size(); ++i) {
    at::Tensor a = in[i].contiguous(), b = out[i].contiguous();
    r.exact = r.exact && a.nbytes() == b.nbytes() &&
              std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
    if (!a.is_floating_point()) continue;
    at::Tensor x = a.to(at::kDouble), d = b.to(at::kDouble) - x;
    e2 += d.pow(2).sum().item<double>();
    x2 += x.pow(2).sum().item<double>();
    emax = std::max(emax, d.abs().max().item<double>());
    xmax = std::max(xmax, x.abs().max().item<double>());
  }
  r.max_rel = xmax > 0 ? emax / xmax : 0;
  r.rel_l2 = x2 > 0 ? std::sqrt(e2 / x2) : 0;
}

Row bench_codec(const std::vector<at::Tensor>& acts, const CodecSpec& codec, int reps,
                int field_dims, std::vector<at::Tensor>* decoded, std::vector<char>* frame) {
  FrameEncoder enc(codec, /*error_every=*/0, field_dims);
  FrameDecoder dec;
  std::vector<char> buf;
  std::vector<double> te, td;
  Frame f;
  for (int i = 0; i < reps + 2; ++i) {  // 2 warm-ups
    auto t0 = std::chrono::steady_clock::now();
    enc.encode(static_cast<uint64_t>(i), 0, acts, buf);
    double e = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    f = dec.decode(buf.data(), buf.size());
    double d = seconds_since(t0);
    if (i >= 2) te.push_back(e), td.push_back(d);
  }
  Row r;
  r.codec = codec.name();
  r.field_dims = field_dims;
  r.mb = f.bytes_raw / 1e6;
  r.ratio = static_cast<double>(f.bytes_raw) / std::max<uint64_t>(f.bytes_encoded, 1);
  r.enc_mbs = r.mb / median(te);
  r.dec_mbs = r.mb / median(td);
  r.codec_ms = 1e3 * (median(te) + median(td));
  measure(acts, f.tensors, r);  // outside the timed loop
  decoded->clear();
  for (const auto& t : f.tensors) decoded->push_back(t.clone());
  frame->swap(buf);
  return r;
}

// Writes a frame for --dump.
void dump_frame(const Options& o, const std::string& model, size_t node, const std::string& codec,
                const std::vector<char>& frame) {
  std::filesystem::create_directories(o.dump);
  std::string file = model + "-node" + std::to_string(node) + "-" + codec + ".frame";
  for (char& c : file)
    if (c == ':' || c == '+') c = '_';
  const std::string path = (std::filesystem::path(o.dump) / file).string();
  std::ofstream out(path, std::ios::binary);
  out.write(frame.data(), static_cast<std::streamsize>(frame.size()));
  out.close();
  EP_CHECK(out.good(), "cannot write ", path);
}

std::string fmt_err(double v, bool lossy) {
  if (!lossy) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.2g", v);
  return b;
}

// Costs of the checksum and of a copy next to the codecs: MB/s of zlib's crc32 (one thread, as
// the frame's checksum runs on one thread) and of memcpy, on `bytes` of random data.
void primitives(size_t bytes, int reps) {
  std::vector<char> a(bytes), b(bytes);
  for (size_t i = 0; i < bytes; ++i) a[i] = static_cast<char>(std::rand());
  std::vector<double> tc, tm;
  volatile uLong sink = 0;
  for (int i = 0; i < reps + 2; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    sink = sink + crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(a.data()),
                        static_cast<uInt>(bytes));
    double c = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    double m = seconds_since(t0);
    if (i >= 2) tc.push_back(c), tm.push_back(m);
  }
  std::printf(
      "on %.2f MB, one thread: zlib crc32 %.0f MB/s (%.2f ms), memcpy %.0f MB/s (%.2f ms)\n",
      bytes / 1e6, bytes / 1e6 / median(tc), 1e3 * median(tc), bytes / 1e6 / median(tm),
      1e3 * median(tm));
}

struct Results {
  std::vector<Row> rows;
  std::vector<CutRow> cut_rows;
  std::vector<StageRow> stage_rows;
  bool ok = true;
};
using FirstDecode = std::map<std::pair<size_t, std::string>, std::vector<at::Tensor>>;

// The stages' compute time of every split, on the current thread count, into the cut and stage
// rows.
void record_stages(const std::string& name, const ModelGraph& mg, const at::Tensor& input,
                   const std::map<size_t, std::vector<size_t>>& splits, const Options& o,
                   int threads, Results& res) {
  std::vector<CutRow>& cut_rows = res.cut_rows;
  std::vector<StageRow>& stage_rows = res.stage_rows;
  // The stages' compute time as the pipeline runs them, on this many threads.
  std::string stage_text;
  std::map<size_t, std::vector<double>> stage_ms;
  for (const auto& [k, nodes] : splits) {
    stage_ms[k] = time_stages(mg, nodes, input, /*optimize=*/true);
    stage_text += (stage_text.empty() ? "" : "; ") + std::to_string(k) + " stages:";
    for (double m : stage_ms[k]) {
      char b[32];
      std::snprintf(b, sizeof b, " %.1f", m);
      stage_text += b;
    }
  }
  std::cout << name << ": stage compute ms (optimised, batch " << o.batch << ", " << threads
            << " thread" << (threads > 1 ? "s" : "") << "), " << stage_text << "\n";
  for (const auto& [k, nodes] : splits)
    for (size_t i = 1; i + 1 < nodes.size(); ++i)
      cut_rows.push_back({name, threads, k, i, nodes[i], stage_ms.at(k)[i - 1], stage_ms.at(k)[i]});
  for (const auto& [k, nodes] : splits)
    for (size_t s = 0; s + 1 < nodes.size(); ++s)
      stage_rows.push_back({name, threads, k, s, nodes[s], s + 2 < nodes.size() ? nodes[s + 1] : 0,
                            stage_ms.at(k)[s]});
}

// Every codec on the activations at one cut; lossless ones must decode bit for bit, and every
// codec the same on every thread count.
void measure_cut(const std::string& name, size_t node, const std::vector<at::Tensor>& acts,
                 const Options& o, int threads, FirstDecode& first_decode, Results& res) {
  bool& ok = res.ok;
  std::vector<Row>& rows = res.rows;
  for (const std::string& c : o.codecs) {
    const CodecSpec spec = parse_codec(c);
    std::vector<int> dims_list{0};  // 0: as edgepipe runs
    if (o.field_dims && spec.is_zfp()) dims_list = {1, 2, 3, 0};
    for (int dims : dims_list) {
      std::vector<at::Tensor> decoded;
      std::vector<char> frame;
      Row r = bench_codec(acts, spec, o.reps, dims, &decoded, &frame);
      if (!o.dump.empty() && dims == 0 && threads == o.threads.front())
        dump_frame(o, name, node, r.codec, frame);
      r.model = name;
      r.node = node;
      r.shapes = shapes_of(acts);
      r.threads = threads;
      if (!spec.lossy() && !r.exact) {
        std::cout << "FAIL: " << r.codec << " did not decode " << name << " at node " << node
                  << " bit for bit\n";
        ok = false;
      }
      auto key = std::make_pair(node, c + "/" + std::to_string(dims));
      auto first = first_decode.find(key);
      if (first == first_decode.end()) {
        first_decode[key] = decoded;
      } else {
        for (size_t i = 0; i < decoded.size(); ++i)
          if (!at::equal(decoded[i], first->second[i])) {
            std::cout << "FAIL: " << r.codec << " decoded " << name << " at node " << node
                      << " differently on " << threads << " threads\n";
            ok = false;
          }
      }
      rows.push_back(r);
    }
  }
}

// One model: its splits, the activations at their cuts, then every codec on each thread count.
void measure_model(const std::string& path, const Options& o, Results& res) {
  at::set_num_threads(o.threads.front());
  ModelGraph mg = load_model_graph(path);
  std::vector<int64_t> shape = mg.input_shape;
  EP_CHECK(!shape.empty(), path, " records no input shape (export it with tools/export_models.py)");
  shape[0] = o.batch;
  at::Tensor input = input_batch(o, shape);
  ModelProfile prof = profile_model(mg, input);
  std::string name = path.substr(path.find_last_of('/') + 1);
  name = name.substr(0, name.rfind('.'));

  // The cuts of each K-stage split (node bounds, first and last included).
  std::map<size_t, std::vector<size_t>> splits;
  std::set<size_t> cut_nodes;
  for (size_t k : o.stages) {
    std::vector<size_t> nodes;
    for (size_t b : partition_chain(prof.block_ms, k)) nodes.push_back(mg.cuts[b]);
    for (size_t i = 0; i + 1 < nodes.size(); ++i) cut_nodes.insert(nodes[i]);  // 0: the input
    splits[k] = nodes;
  }
  // The activations at each cut, computed once.
  std::map<size_t, std::vector<at::Tensor>> acts_at;
  for (size_t node : cut_nodes) {
    if (node == 0) {  // the model's input, which stage 0 decodes
      acts_at[0] = {input.contiguous().clone()};
      continue;
    }
    StageRunner head(build_stage_module(mg, 0, node));
    std::vector<at::Tensor> acts = head.run({input});
    for (auto& t : acts) t = t.contiguous().clone();
    acts_at[node] = acts;
  }
  // What each lossy codec decoded on the first thread count: the others must decode the same.
  FirstDecode first_decode;
  for (int threads : o.threads) {
    at::set_num_threads(threads);
    record_stages(name, mg, input, splits, o, threads, res);
    for (size_t node : cut_nodes)
      measure_cut(name, node, acts_at[node], o, threads, first_decode, res);
  }
}

void print_codec_table(const Options& o, const std::vector<Row>& rows) {
  std::cout << "\n| model | threads | cut (node) | tensors | MB | codec | ratio | encode MB/s | "
               "decode MB/s | encode + decode ms | max rel err | rel L2 err |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    const bool lossy = parse_codec(r.codec).lossy();
    std::string codec = r.codec;
    if (o.field_dims && parse_codec(r.codec).is_zfp())
      codec += r.field_dims ? " (at most " + std::to_string(r.field_dims) + "-D)" : " (default)";
    char line[512];
    std::snprintf(line, sizeof line,
                  "| %s | %d | %zu | %s | %.2f | %s | %.2fx | %.0f | %.0f | %.2f | %s | %s |\n",
                  r.model.c_str(), r.threads, r.node, r.shapes.c_str(), r.mb, codec.c_str(),
                  r.ratio, r.enc_mbs, r.dec_mbs, r.codec_ms, fmt_err(r.max_rel, lossy).c_str(),
                  fmt_err(r.rel_l2, lossy).c_str());
    std::cout << line;
  }
}

// Returns the costliest codec relative to its stages, per model and thread count.
std::map<std::pair<std::string, int>, std::pair<double, std::string>> print_cut_table(
    const std::vector<CutRow>& cut_rows, const std::vector<Row>& rows) {
  // Codec cost against stage compute, at every cut of every split (as edgepipe runs: default
  // field). The stage before a cut encodes, the one after decodes; the share is of the smaller.
  std::cout
      << "\n| model | threads | stages | cut (node) | MB | codec | encode + decode ms | stage "
         "compute ms, before / after | encode + decode / compute |\n"
         "|---|---|---|---|---|---|---|---|---|\n";
  std::map<std::pair<std::string, int>, std::pair<double, std::string>> worst;
  for (const CutRow& c : cut_rows) {
    for (const Row& r : rows) {
      if (r.model != c.model || r.threads != c.threads || r.node != c.node || r.field_dims != 0)
        continue;
      const double share = r.codec_ms / std::min(c.before_ms, c.after_ms);
      char line[512];
      std::snprintf(
          line, sizeof line,
          "| %s | %d | %zu | %zu of %zu (%zu) | %.2f | %s | %.2f | %.1f / %.1f | %.0f%% |\n",
          c.model.c_str(), c.threads, c.stages, c.cut, c.stages - 1, c.node, r.mb, r.codec.c_str(),
          r.codec_ms, c.before_ms, c.after_ms, 100 * share);
      std::cout << line;
      auto& w = worst[{c.model, c.threads}];
      if (share > w.first) {
        char v[256];
        std::snprintf(v, sizeof v, "%s at cut %zu of %zu stages, %.2f ms against %.1f ms",
                      r.codec.c_str(), c.cut, c.stages, r.codec_ms,
                      std::min(c.before_ms, c.after_ms));
        w = {share, v};
      }
    }
  }
  return worst;
}

void print_stage_table(const std::vector<StageRow>& stage_rows, const std::vector<Row>& rows) {
  // Each stage's own codec work, decode of its input + encode of its output, against its compute.
  // With --overlap the stage's period is the larger of the two (docs/planner.md): below 100 %
  // the codec never sets the pace. The last stage's output (the logits) is not measured: tiny.
  std::cout << "\n| model | threads | stages | stage | codec | decode in ms | encode out ms | "
               "stage codec ms | stage compute ms | codec / compute |\n"
               "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const StageRow& st : stage_rows) {
    for (const Row& in : rows) {
      if (in.model != st.model || in.threads != st.threads || in.node != st.in_node ||
          in.field_dims != 0)
        continue;
      const double dec_ms = in.dec_mbs > 0 ? 1e3 * in.mb / in.dec_mbs : 0;
      double enc_ms = 0;
      for (const Row& out : rows)
        if (st.out_node != 0 && out.model == st.model && out.threads == st.threads &&
            out.node == st.out_node && out.field_dims == 0 && out.codec == in.codec)
          enc_ms = out.enc_mbs > 0 ? 1e3 * out.mb / out.enc_mbs : 0;
      char line[512];
      std::snprintf(line, sizeof line,
                    "| %s | %d | %zu | %zu | %s | %.2f | %s | %.2f | %.1f | %.0f%% |\n",
                    st.model.c_str(), st.threads, st.stages, st.stage, in.codec.c_str(), dec_ms,
                    st.out_node ? strprintf("%.2f", enc_ms).c_str() : "(logits)", dec_ms + enc_ms,
                    st.compute_ms, 100 * (dec_ms + enc_ms) / st.compute_ms);
      std::cout << line;
    }
  }
}

void write_csv(const std::string& path, const std::vector<Row>& rows) {
  std::ofstream f(path);
  f << "model,threads,cut_node,tensors,mb,codec,field_dims,ratio,encode_mbs,decode_mbs,codec_ms,"
       "max_rel_err,rel_l2_err,exact\n";
  for (const Row& r : rows)
    f << r.model << "," << r.threads << "," << r.node << "," << r.shapes << "," << r.mb << ","
      << r.codec << "," << r.field_dims << "," << r.ratio << "," << r.enc_mbs << "," << r.dec_mbs
      << "," << r.codec_ms << "," << r.max_rel << "," << r.rel_l2 << "," << r.exact << "\n";
  std::cout << "wrote " << path << "\n";
}

int run(const Options& o) {
  Results res;
  for (const std::string& path : o.models) measure_model(path, o, res);
  const std::vector<Row>& rows = res.rows;
  const bool ok = res.ok;
  print_codec_table(o, rows);
  const auto worst = print_cut_table(res.cut_rows, rows);
  print_stage_table(res.stage_rows, rows);
  std::cout << "\n";
  for (const auto& [key, w] : worst)
    std::printf("%s, %d thread%s: the costliest codec relative to its stages is %s (%.0f%%)\n",
                key.first.c_str(), key.second, key.second > 1 ? "s" : "", w.second.c_str(),
                100 * w.first);
  size_t largest = 0;
  for (const Row& r : rows) largest = std::max(largest, static_cast<size_t>(r.mb * 1e6));
  if (largest > 0) primitives(largest, o.reps);
  std::cout << (ok ? "lossless codecs: every frame decoded bit for bit; every codec decoded the "
                     "same on every thread count\n"
                   : "FAIL: see above\n");
  if (!o.csv.empty()) write_csv(o.csv, rows);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.codecs = split(kDefaultCodecs, ';');
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        EP_CHECK(i + 1 < argc, a, " needs a value");
        return argv[++i];
      };
      if (a == "--model") {
        o.models.push_back(value());
      } else if (a == "--stages") {
        o.stages.clear();
        for (const auto& s : split(value(), ',')) o.stages.push_back(std::stoul(s));
      } else if (a == "--threads") {
        o.threads.clear();
        for (const auto& s : split(value(), ',')) o.threads.push_back(std::stoi(s));
      } else if (a == "--codecs") {
        o.codecs = split(value(), ';');
      } else if (a == "--batch") {
        o.batch = std::stoll(value());
      } else if (a == "--reps") {
        o.reps = std::stoi(value());
      } else if (a == "--field-dims") {
        o.field_dims = true;
      } else if (a == "--csv") {
        o.csv = value();
      } else if (a == "--input") {
        o.input = value();
      } else if (a == "--dump") {
        o.dump = value();
      } else if (a == "--seed") {
        o.seed = std::stoull(value());
      } else {
        EP_FAIL("unknown option '", a, "' (see the comment at the top of tools/bench_codecs.cpp)");
      }
    }
    EP_CHECK(!o.models.empty(), "give at least one --model FILE");
    EP_CHECK(o.reps > 0 && o.batch > 0, "--reps and --batch must be positive");
    EP_CHECK(!o.threads.empty() && *std::min_element(o.threads.begin(), o.threads.end()) > 0,
             "--threads takes positive thread counts");
    for (const auto& c : o.codecs) parse_codec(c);  // fail early on a typo
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_codecs: " << e.what() << "\n";
    return 1;
  }
}
