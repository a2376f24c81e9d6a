// bench_codecs: every codec on the activations at real cut points of real models, on one core.
//
// For each model: the planner's own split of the model into K stages (K from --stages, by the
// profiled block times, as `edgepipe run` splits it) gives the cut points; the activations there
// come from running the model's first stages on a random-normal input batch (seeded). At each cut,
// each codec encodes and decodes the frame of those tensors: --reps timed runs after 2 warm-up
// runs, median reported. The same run checks correctness: lossless codecs must decode bit for bit,
// and the error of lossy ones is measured on what they decoded.
//
// Figures (docs/codecs.md defines them): ratio = tensor bytes / encoded tensor bytes (frame
// headers excluded); encode MB/s and decode MB/s = raw tensor megabytes (1e6 bytes) / median
// seconds of FrameEncoder::encode and FrameDecoder::decode of the frame (checksum included);
// max rel = max |x' - x| / max |x|; rel L2 = ||x' - x|| / ||x||. The verdict compares encode +
// decode per frame with the compute time of the stages (optimised, as the pipeline runs them).
//
// Usage: bench_codecs --model FILE [--model FILE ...] [--stages 2,4] [--batch 1] [--reps 5]
//                     [--codecs "raw;lz4;zfp-rate:8"] [--field-dims] [--csv FILE] [--seed 1]
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "edgepipe/codec.h"
#include "edgepipe/error.h"
#include "edgepipe/graph.h"
#include "edgepipe/plan.h"
#include "edgepipe/profile.h"
#include "edgepipe/stage.h"

using namespace edgepipe;

namespace {

const char* kDefaultCodecs =
    "raw;lz4;zfp-reversible;zfp-reversible+lz4;zfp-rate:16;zfp-rate:8;zfp-rate:8+lz4;zfp-rate:4;"
    "zfp-precision:16;zfp-precision:10;zfp-accuracy:1e-2;zfp-relacc:1e-3;zfp-relacc:1e-2;"
    "zfp-relacc:3e-2;zfp-relacc:3e-2+lz4";

struct Options {
  std::vector<std::string> models;
  std::vector<size_t> stages{2, 4};
  std::vector<std::string> codecs;
  int64_t batch = 1;
  int reps = 5;
  bool field_dims = false;  // also compare 1-, 2- and 3-D zfp fields
  std::string csv;
  uint64_t seed = 1;
};

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
                int field_dims) {
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
  return r;
}

std::string fmt_err(double v, bool lossy) {
  if (!lossy) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.2g", v);
  return b;
}

int run(const Options& o) {
  at::set_num_threads(1);
  std::vector<Row> rows;
  std::vector<std::string> verdicts;
  bool ok = true;
  for (const std::string& path : o.models) {
    ModelGraph mg = load_model_graph(path);
    std::vector<int64_t> shape = mg.input_shape;
    EP_CHECK(!shape.empty(), path,
             " records no input shape (export it with tools/export_models.py)");
    shape[0] = o.batch;
    at::manual_seed(static_cast<int64_t>(o.seed));
    at::Tensor input = at::randn(shape);
    ModelProfile prof = profile_model(mg, input);
    std::string name = path.substr(path.find_last_of('/') + 1);
    name = name.substr(0, name.rfind('.'));

    // The cuts of each K-stage split, and its stages' compute time as the pipeline runs them.
    std::set<size_t> cut_nodes;
    double min_stage_ms = 1e300;
    std::string stage_text;
    for (size_t k : o.stages) {
      std::vector<size_t> bounds = partition_chain(prof.block_ms, k);
      std::vector<size_t> nodes;
      for (size_t b : bounds) nodes.push_back(mg.cuts[b]);
      for (size_t i = 1; i + 1 < nodes.size(); ++i) cut_nodes.insert(nodes[i]);
      std::vector<double> ms = time_stages(mg, nodes, input, /*optimize=*/true);
      stage_text += (stage_text.empty() ? "" : "; ") + std::to_string(k) + " stages:";
      for (double m : ms) {
        char b[32];
        std::snprintf(b, sizeof b, " %.1f", m);
        stage_text += b;
        min_stage_ms = std::min(min_stage_ms, m);
      }
    }
    std::cout << name << ": stage compute ms (optimised, batch " << o.batch << ", 1 thread), "
              << stage_text << "\n";

    double worst_ms = 0;
    std::string worst;
    for (size_t node : cut_nodes) {
      StageRunner head(build_stage_module(mg, 0, node));
      std::vector<at::Tensor> acts = head.run({input});
      for (auto& t : acts) t = t.contiguous().clone();
      for (const std::string& c : o.codecs) {
        const CodecSpec spec = parse_codec(c);
        std::vector<int> dims_list{0};  // 0: as edgepipe runs
        if (o.field_dims && spec.is_zfp()) dims_list = {1, 2, 3, 0};
        for (int dims : dims_list) {
          Row r = bench_codec(acts, spec, o.reps, dims);
          r.model = name;
          r.node = node;
          r.shapes = shapes_of(acts);
          if (!spec.lossy() && !r.exact) {
            std::cout << "FAIL: " << r.codec << " did not decode " << name << " at node " << node
                      << " bit for bit\n";
            ok = false;
          }
          if (dims == 0 && r.codec_ms > worst_ms) {
            worst_ms = r.codec_ms;
            worst = r.codec + " at node " + std::to_string(node);
          }
          rows.push_back(r);
        }
      }
    }
    char v[400];
    std::snprintf(v, sizeof v,
                  "%s: the costliest codec (%s) takes %.2f ms to encode + decode a frame, %.1f%% "
                  "of the fastest stage's compute (%.1f ms)",
                  name.c_str(), worst.c_str(), worst_ms, 100 * worst_ms / min_stage_ms,
                  min_stage_ms);
    verdicts.push_back(v);
  }

  std::cout << "\n| model | cut (node) | tensors | MB | codec | ratio | encode MB/s | decode MB/s "
               "| encode + decode ms | max rel err | rel L2 err |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    const bool lossy = parse_codec(r.codec).lossy();
    std::string codec = r.codec;
    if (o.field_dims && parse_codec(r.codec).is_zfp())
      codec += r.field_dims ? " (at most " + std::to_string(r.field_dims) + "-D)" : " (default)";
    char line[512];
    std::snprintf(
        line, sizeof line, "| %s | %zu | %s | %.2f | %s | %.2fx | %.0f | %.0f | %.2f | %s | %s |\n",
        r.model.c_str(), r.node, r.shapes.c_str(), r.mb, codec.c_str(), r.ratio, r.enc_mbs,
        r.dec_mbs, r.codec_ms, fmt_err(r.max_rel, lossy).c_str(), fmt_err(r.rel_l2, lossy).c_str());
    std::cout << line;
  }
  std::cout << "\n";
  for (const auto& v : verdicts) std::cout << v << "\n";
  std::cout << (ok ? "lossless codecs: every frame decoded bit for bit\n"
                   : "FAIL: a lossless codec did not decode bit for bit\n");
  if (!o.csv.empty()) {
    std::ofstream f(o.csv);
    f << "model,cut_node,tensors,mb,codec,field_dims,ratio,encode_mbs,decode_mbs,codec_ms,"
         "max_rel_err,rel_l2_err,exact\n";
    for (const Row& r : rows)
      f << r.model << "," << r.node << "," << r.shapes << "," << r.mb << "," << r.codec << ","
        << r.field_dims << "," << r.ratio << "," << r.enc_mbs << "," << r.dec_mbs << ","
        << r.codec_ms << "," << r.max_rel << "," << r.rel_l2 << "," << r.exact << "\n";
    std::cout << "wrote " << o.csv << "\n";
  }
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
      } else if (a == "--seed") {
        o.seed = std::stoull(value());
      } else {
        EP_FAIL("unknown option '", a, "' (see the comment at the top of tools/bench_codecs.cpp)");
      }
    }
    EP_CHECK(!o.models.empty(), "give at least one --model FILE");
    EP_CHECK(o.reps > 0 && o.batch > 0, "--reps and --batch must be positive");
    for (const auto& c : o.codecs) parse_codec(c);  // fail early on a typo
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_codecs: " << e.what() << "\n";
    return 1;
  }
}
