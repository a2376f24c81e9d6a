#include "edgepipe/plan/resnet50_shaped.h"

#include <vector>

namespace edgepipe {

ModelCosts resnet50_shaped() {
  struct Row {
    double params, mflops, out_bytes;
  };
  std::vector<Row> rows = {{9536, 118, 802816}};  // stem: conv1 + maxpool
  // `count` bottlenecks of one layer: the first with its own parameters and FLOPs (it changes the
  // width or the resolution), the others alike.
  auto add = [&](int count, double p0, double p, double f0, double f, double out) {
    for (int i = 0; i < count; ++i) rows.push_back({i == 0 ? p0 : p, i == 0 ? f0 : f, out});
  };
  add(3, 75008, 70400, 241, 218, 3211264);
  add(4, 379392, 280064, 379, 218, 1605632);
  add(6, 1512448, 1117184, 379, 218, 802816);
  add(3, 6039552, 4462592, 379, 218, 401408);
  rows.push_back({2049000, 4, 4000});  // avgpool + fc
  ModelCosts m;
  m.cut_bytes.push_back(3 * 224 * 224 * 4);
  for (const Row& r : rows) {
    const double in = m.cut_bytes.back();
    m.blocks.push_back({r.mflops / 20.0, r.params * 4, in + 2 * r.out_bytes});
    m.cut_bytes.push_back(r.out_bytes);
  }
  return m;
}

}  // namespace edgepipe
