// When the blocks of a launch start, and what a launch costs besides its blocks (issue #14, docs/gpu.md "Time").
// A grid of 256-thread blocks (EmbeddingBag's 32 x 8), 6 resident per SM as in PyTorch's kernel (36 KiB of dynamic
// shared memory a block), each warp doing `chase` dependent 128-byte reads of a 256 MiB random cycle (HBM misses,
// ld.global.cg) and recording %globaltimer at its start and end, and its SM. Per (grid, chase): the CUDA-event time
// of the launch (median of 5), the blocks' start times from the first block's start (quantiles, and the 792nd
// block's: the last of the first wave on an H100), the warps' durations, and the span from the first start to the
// last end. Writes $OUT/block_dispatch.csv and, for a few launches, every block (block_starts_*.csv).
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <random>
#include <string>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t ck_ = (x); if (ck_ != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(ck_), __LINE__); exit(1);} } while (0)

__device__ __forceinline__ unsigned long long gtimer() {
  unsigned long long t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t;
}
__device__ __forceinline__ unsigned smid() { unsigned s; asm volatile("mov.u32 %0, %%smid;" : "=r"(s)); return s; }

__global__ void stamp(const unsigned *next, int chase, unsigned long long *start, unsigned long long *end,
                      unsigned *sm, unsigned long long *sink) {
  extern __shared__ char pad[];
  unsigned long long t0 = gtimer();
  int lane = threadIdx.x & 31;
  int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  unsigned i = (unsigned)(warp * 2654435761u) & ((1u << 21) - 1);
  for (int k = 0; k < chase; ++k) i = __ldcg(next + (size_t)i * 32);
  if (lane == 0) pad[threadIdx.x >> 5] = (char)i;
  __syncwarp();
  unsigned long long t1 = gtimer();
  if (lane == 0) {
    start[warp] = t0; end[warp] = t1; sm[warp] = smid();
    if (i == 0xffffffffu) sink[0] = pad[0];
  }
}

int main(int argc, char **argv) {
  std::string out = argc > 1 ? argv[1] : ".";
  const unsigned lines = 1u << 21;  // 2M lines of 128 B: 256 MiB
  std::vector<unsigned> perm(lines), h(lines * 32, 0);
  for (unsigned k = 0; k < lines; ++k) perm[k] = k;
  std::mt19937 rng(2026);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (unsigned k = 0; k < lines; ++k) h[(size_t)perm[k] * 32] = perm[(k + 1) % lines];
  unsigned *next; CK(cudaMalloc(&next, h.size() * 4)); CK(cudaMemcpy(next, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
  const int maxw = 4096 * 8;
  unsigned long long *st, *en, *sink; unsigned *sm;
  CK(cudaMalloc(&st, maxw * 8)); CK(cudaMalloc(&en, maxw * 8)); CK(cudaMalloc(&sm, maxw * 4)); CK(cudaMalloc(&sink, 8));
  const int smem = 36 * 1024;
  CK(cudaFuncSetAttribute(stamp, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int per_sm = 0; CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, stamp, 256, smem));
  cudaDeviceProp p; CK(cudaGetDeviceProperties(&p, 0));
  printf("%s: %d SMs, %d blocks of 256 per SM\n", p.name, p.multiProcessorCount, per_sm);
  FILE *f = fopen((out + "/block_dispatch.csv").c_str(), "w");
  fprintf(f, "gpu,sms,blocks_per_sm,grid,chase,event_ns,span_ns,start_p10,start_p50,start_p90,start_max,start_first_wave_last,"
             "warp_ns_min,warp_ns_p50,warp_ns_p90,warp_ns_max,end_first_wave_p50,blocks_on_busiest_sm\n");
  cudaEvent_t a, b; CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
  int grids[] = {32, 132, 264, 512, 792, 1024, 2048, 4096};
  int chases[] = {0, 4, 16};
  for (int chase : chases) for (int grid : grids) {
    int W = grid * 8;
    std::vector<float> ms;
    for (int rep = 0; rep < 5; ++rep) {
      CK(cudaEventRecord(a));
      stamp<<<grid, 256, smem>>>(next, chase, st, en, sm, sink);
      CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b)); CK(cudaGetLastError());
      float t; CK(cudaEventElapsedTime(&t, a, b)); ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    std::vector<unsigned long long> s(W), e(W); std::vector<unsigned> m(W);
    CK(cudaMemcpy(s.data(), st, W * 8, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(e.data(), en, W * 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(m.data(), sm, W * 4, cudaMemcpyDeviceToHost));
    unsigned long long t0 = *std::min_element(s.begin(), s.end()), t1 = *std::max_element(e.begin(), e.end());
    std::vector<double> bs(grid), wd(W);
    std::vector<int> per(p.multiProcessorCount, 0);
    for (int blk = 0; blk < grid; ++blk) {
      unsigned long long x = s[blk * 8];
      for (int w = 0; w < 8; ++w) x = std::min(x, s[blk * 8 + w]);
      bs[blk] = double(x - t0); per[m[blk * 8] % p.multiProcessorCount]++;
    }
    for (int w = 0; w < W; ++w) wd[w] = double(e[w] - s[w]);
    std::vector<double> sb = bs, sw = wd; std::sort(sb.begin(), sb.end()); std::sort(sw.begin(), sw.end());
    auto q = [](const std::vector<double> &v, double f) { return v[std::min(v.size() - 1, (size_t)(f * (v.size() - 1) + 0.5))]; };
    int fw = std::min(grid, p.multiProcessorCount * per_sm);
    // ends of the first wave's warps (the blocks that started first)
    std::vector<double> fe; for (int blk = 0; blk < grid; ++blk) if (bs[blk] <= sb[fw - 1]) for (int w = 0; w < 8; ++w) fe.push_back(double(e[blk * 8 + w] - t0));
    std::sort(fe.begin(), fe.end());
    fprintf(f, "%s,%d,%d,%d,%d,%.0f,%llu,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%d\n", p.name, p.multiProcessorCount, per_sm,
            grid, chase, ms[2] * 1e6, t1 - t0, q(sb, .1), q(sb, .5), q(sb, .9), sb.back(), sb[fw - 1], sw.front(), q(sw, .5),
            q(sw, .9), sw.back(), fe.empty() ? 0.0 : q(fe, .5), *std::max_element(per.begin(), per.end()));
    printf("grid %d chase %d: event %.1f us, span %.1f us, first-wave last start %.2f us, start max %.2f us, warp p50 %.2f us\n",
           grid, chase, ms[2] * 1e3, (t1 - t0) / 1e3, sb[fw - 1] / 1e3, sb.back() / 1e3, q(sw, .5) / 1e3);
    if ((grid == 1024 || grid == 512) && chase != 4) {
      FILE *g = fopen((out + "/block_starts_g" + std::to_string(grid) + "_c" + std::to_string(chase) + ".csv").c_str(), "w");
      fprintf(g, "block,sm,start_ns,end_ns\n");
      for (int blk = 0; blk < grid; ++blk) {
        unsigned long long x = e[blk * 8]; for (int w = 0; w < 8; ++w) x = std::max(x, e[blk * 8 + w]);
        fprintf(g, "%d,%u,%.0f,%llu\n", blk, m[blk * 8], bs[blk], x - t0);
      }
      fclose(g);
    }
  }
  fclose(f);
  return 0;
}
