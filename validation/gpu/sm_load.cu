// How a launch's time depends on how many warps each SM holds (sixth session, issue #14; docs/gpu.md "What remains
// off": launches of one chunk a warp end with their busiest SMs). A kernel of the shape of PyTorch's EmbeddingBag
// (mode sum; written here, not PyTorch's code): blocks of 32 x 8 threads, a grid of 1,024 blocks, 6 resident per SM
// (36 KiB of dynamic shared memory a block, as PyTorch's 40 registers allow), each warp a chunk (a bag and 32
// columns) striding over the grid's warps; per chunk it loads the bag's two offsets, checks its indices, then
// gathers and adds the rows' 32 columns and stores them. Each warp records %globaltimer at its start, after its
// first chunk's offsets and index check, and at its end, with its SM and its warp slot (%warpid; sub-partition =
// slot mod 4). The table is n10's: 1M rows x 128 fp32, Zipf 1.05 ranks over a random permutation of the rows,
// pooling 20; batches of 128 to 1,584 bags (the busiest SM takes 1 to 6 working blocks), the L2 flushed before the
// recorded launch (a 256 MiB write). Writes $OUT/sm_load.csv (one row per launch) and sm_load_warps_<bags>.csv
// (one row per warp with work).
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cmath>
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
__device__ __forceinline__ unsigned warpslot() { unsigned s; asm volatile("mov.u32 %0, %%warpid;" : "=r"(s)); return s; }

__global__ void __launch_bounds__(256, 6) bag_sum(const float *__restrict__ weight, const int64_t *__restrict__ indices,
                        const int64_t *__restrict__ offsets, float *__restrict__ out, int64_t *__restrict__ bag_of,
                        int64_t *__restrict__ bag_size, int64_t nbags, int64_t nidx, int dim,
                        unsigned long long *stamps, unsigned *where) {
  extern __shared__ char pad[];
  unsigned long long t0 = gtimer(), t1 = 0;
  const int64_t chunks_per_bag = (dim + 31) / 32;
  const int64_t nchunks = nbags * chunks_per_bag;
  const int64_t first = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  const int64_t stride = (int64_t)gridDim.x * blockDim.y;
  for (int64_t chunk = first; chunk < nchunks; chunk += stride) {
    const int64_t col = (chunk % chunks_per_bag) * 32 + threadIdx.x;
    const int64_t bag = chunk / chunks_per_bag;
    const int64_t begin = offsets[bag];
    const int64_t end = bag < nbags - 1 ? offsets[bag + 1] : nidx;
    int64_t valid = 0;
    for (int64_t e = begin; e < end; ++e) valid += indices[e] >= 0;  // the bag-size pass (no padding index)
    if (t1 == 0) t1 = gtimer();
    if (col < dim) {
      float sum = 0.f;
      for (int64_t e = begin; e < end; ++e) {
        const int64_t row = indices[e];
        if (col == 0) bag_of[e] = bag;
        sum += weight[row * dim + col];
      }
      out[bag * dim + col] = sum;
      if (col == 0) bag_size[bag] = valid;
    }
  }
  if (threadIdx.x == 0) {
    const int64_t w = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
    stamps[3 * w] = t0; stamps[3 * w + 1] = t1; stamps[3 * w + 2] = gtimer();
    where[2 * w] = smid(); where[2 * w + 1] = warpslot();
    if (nbags < 0) pad[0] = 0;
  }
}

__global__ void scribble(float *buf, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) buf[i] = 1.f;
}

int main(int argc, char **argv) {
  std::string outdir = argc > 1 ? argv[1] : ".";
  const int64_t rows = 1000000; const int dim = 128, pooling = 20, grid = 1024;
  const std::vector<int> batches = {128, 256, 384, 512, 640, 768, 1024, 1280, 1584};
  // Zipf 1.05 over ranks 1..rows (inverse CDF of the exact bounded weights), ranks mapped through a permutation
  std::vector<double> cdf(rows);
  double acc = 0; for (int64_t k = 0; k < rows; ++k) { acc += std::pow((double)(k + 1), -1.05); cdf[k] = acc; }
  std::vector<int64_t> perm(rows); for (int64_t k = 0; k < rows; ++k) perm[k] = k;
  std::mt19937_64 rng(2026); std::shuffle(perm.begin(), perm.end(), rng);
  std::uniform_real_distribution<double> u(0.0, acc);
  float *weight, *out, *flush; int64_t *idx, *offs, *bag_of, *bag_size; unsigned long long *stamps; unsigned *where;
  const int maxbags = 2048, maxw = grid * 8; const size_t flush_n = (256u << 20) / 4;
  CK(cudaMalloc(&weight, rows * dim * 4)); CK(cudaMemset(weight, 0, rows * dim * 4));
  CK(cudaMalloc(&out, maxbags * dim * 4)); CK(cudaMalloc(&idx, maxbags * pooling * 8)); CK(cudaMalloc(&offs, maxbags * 8));
  CK(cudaMalloc(&bag_of, maxbags * pooling * 8)); CK(cudaMalloc(&bag_size, maxbags * 8));
  CK(cudaMalloc(&stamps, maxw * 3 * 8)); CK(cudaMalloc(&where, maxw * 2 * 4)); CK(cudaMalloc(&flush, flush_n * 4));
  const int smem = 36 * 1024;
  CK(cudaFuncSetAttribute(bag_sum, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int per_sm = 0; CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, bag_sum, 256, smem));
  cudaDeviceProp p; CK(cudaGetDeviceProperties(&p, 0));
  printf("%s: %d SMs, %d blocks of 256 per SM\n", p.name, p.multiProcessorCount, per_sm);
  FILE *f = fopen((outdir + "/sm_load.csv").c_str(), "w");
  fprintf(f, "gpu,bags,working_warps,event_ns,span_ns,warp_ns_mean,warp_ns_max,busiest_sm_warps,busiest_sm_end_ns,"
             "mean_sm_end_ns,quietest_sm_warps,quietest_sm_end_ns\n");
  cudaEvent_t ea, eb; CK(cudaEventCreate(&ea)); CK(cudaEventCreate(&eb));
  for (int bags : batches) {
    std::vector<int64_t> hi(bags * pooling), ho(bags);
    for (int b = 0; b < bags; ++b) ho[b] = (int64_t)b * pooling;
    for (auto &x : hi) x = perm[std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin()];
    CK(cudaMemcpy(idx, hi.data(), hi.size() * 8, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(offs, ho.data(), ho.size() * 8, cudaMemcpyHostToDevice));
    dim3 block(32, 8);
    for (int r = 0; r < 14; ++r)  // warm the code and the driver
      bag_sum<<<grid, block, smem>>>(weight, idx, offs, out, bag_of, bag_size, bags, bags * pooling, dim, stamps, where);
    scribble<<<1024, 256>>>(flush, flush_n);
    CK(cudaMemset(stamps, 0, maxw * 3 * 8));
    CK(cudaEventRecord(ea));
    bag_sum<<<grid, block, smem>>>(weight, idx, offs, out, bag_of, bag_size, bags, bags * pooling, dim, stamps, where);
    CK(cudaEventRecord(eb)); CK(cudaEventSynchronize(eb));
    float ms = 0; CK(cudaEventElapsedTime(&ms, ea, eb));
    std::vector<unsigned long long> st(maxw * 3); std::vector<unsigned> wh(maxw * 2);
    CK(cudaMemcpy(st.data(), stamps, st.size() * 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(wh.data(), where, wh.size() * 4, cudaMemcpyDeviceToHost));
    unsigned long long t0 = ~0ull, tend = 0;
    for (int w = 0; w < maxw; ++w) if (st[3 * w]) { t0 = std::min(t0, st[3 * w]); tend = std::max(tend, st[3 * w + 2]); }
    const int working = bags * (dim / 32);
    std::vector<int> nw(p.multiProcessorCount, 0); std::vector<unsigned long long> smend(p.multiProcessorCount, 0);
    double wsum = 0, wmax = 0;
    FILE *g = fopen((outdir + "/sm_load_warps_" + std::to_string(bags) + ".csv").c_str(), "w");
    fprintf(g, "warp,sm,slot,start_ns,prologue_end_ns,end_ns\n");
    for (int w = 0; w < working; ++w) {
      unsigned s = wh[2 * w];
      nw[s]++; smend[s] = std::max(smend[s], st[3 * w + 2]);
      double d = (double)(st[3 * w + 2] - st[3 * w]); wsum += d; wmax = std::max(wmax, d);
      fprintf(g, "%d,%u,%u,%llu,%llu,%llu\n", w, s, wh[2 * w + 1], st[3 * w] - t0, st[3 * w + 1] - t0, st[3 * w + 2] - t0);
    }
    fclose(g);
    int busy = 0, quiet = 0; double mean_end = 0; int used = 0;
    for (int s = 0; s < p.multiProcessorCount; ++s) {
      if (nw[s] > nw[busy] || (nw[s] == nw[busy] && smend[s] > smend[busy])) busy = s;
      if (nw[s] && (nw[quiet] == 0 || nw[s] < nw[quiet])) quiet = s;
      if (nw[s]) { mean_end += smend[s] - t0; used++; }
    }
    fprintf(f, "%s,%d,%d,%.0f,%llu,%.0f,%.0f,%d,%llu,%.0f,%d,%llu\n", p.name, bags, working, ms * 1e6, tend - t0,
            wsum / working, wmax, nw[busy], smend[busy] - t0, mean_end / std::max(1, used), nw[quiet], smend[quiet] - t0);
    printf("bags %d: span %llu ns, busiest SM %d warps ends %llu ns, quietest %d warps ends %llu\n", bags, tend - t0,
           nw[busy], smend[busy] - t0, nw[quiet], smend[quiet] - t0);
  }
  fclose(f);
  return 0;
}
