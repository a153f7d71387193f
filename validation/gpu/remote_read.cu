// Latency and throughput of a GPU's loads from memory outside its HBM (issue #14, item 4): pinned host memory
// read in place over PCIe (zero-copy: cudaHostAlloc memory, mapped by UVA) and, with two GPUs, another GPU's
// HBM over NVLink (peer access). The same two measurements on local HBM are the control.
//
// Build: nvcc -O3 -arch=sm_90 -o remote_read remote_read.cu     Run: ./remote_read OUTDIR
//
// * chase: one thread walks a chain of dependent 8-byte loads (ld.global.cg: L2, not L1), one node per 128-byte
//   line, 65,536 random distinct lines over a 1 GiB buffer, each visited once after the chain is written and the
//   L2 flushed: the idle latency of a miss to that memory (CUDA events / hops; includes one launch over the hops).
// * rand: every SM's warps read random 128-byte lines of the buffer (lane i reads 4 bytes of it, as EmbeddingBag's
//   warp reads a row chunk of dim 32 fp32), K lines in flight per warp, for a fixed number of lines: GB/s of
//   useful bytes at 1 to 64 warps per SM. The addresses come from a table of precomputed offsets (one load from
//   local HBM per line, an L2 hit mostly), not from arithmetic, so the issue rate does not bound it.
// Output: OUTDIR/remote_chase.csv, OUTDIR/remote_rand.csv.
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <vector>
#include <random>
#include <algorithm>
#include <string>
#include <cuda_runtime.h>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)

typedef unsigned long long u64;

__global__ void chase(const u64* buf, u64 start, long long hops, u64* out) {
    u64 idx = start;
    for (long long i = 0; i < hops; ++i) idx = __ldcg(buf + idx);
    out[0] = idx;
}

__global__ void write_chain(u64* buf, const u64* node, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) buf[node[i]] = node[(i + 1) % n];
}

__global__ void flush(uint4* p, size_t n16) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (; i < n16; i += (size_t)gridDim.x * blockDim.x) { uint4 v = p[i]; v.x += 1; p[i] = v; }
}

// each warp: lines [w * per_warp, (w + 1) * per_warp) of the offset table, K at a time
template <int K>
__global__ void rand_read(const float* buf, const unsigned* line_of, long long per_warp, float* sink) {
    long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    const unsigned* my = line_of + w * per_warp;
    float acc = 0.f;
    for (long long j = 0; j < per_warp; j += K) {
        float v[K];
#pragma unroll
        for (int k = 0; k < K; ++k) v[k] = __ldcg(buf + (size_t)my[j + k] * 32 + lane);
#pragma unroll
        for (int k = 0; k < K; ++k) acc += v[k];
    }
    if (acc == 12345.678f) sink[0] = acc;
}

struct Mem {
    std::string name;
    void* ptr;
};

static uint4* g_flush = nullptr;
static uint4* g_flush1 = nullptr;  // on device 1 (its L2 holds the peer buffer's freshly written lines)
static char* g_evict = nullptr;    // host memory to evict the CPU's caches (inbound writes may sit in its LLC)
static const size_t FLUSH_BYTES = 256ull << 20, EVICT_BYTES = 2ull << 30;

static void flush_l2() {
    flush<<<1024, 256>>>(g_flush, FLUSH_BYTES / 16);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    if (g_flush1) {
        CK(cudaSetDevice(1));
        flush<<<1024, 256>>>(g_flush1, FLUSH_BYTES / 16);
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        CK(cudaSetDevice(0));
    }
    if (!g_evict) g_evict = (char*)malloc(EVICT_BYTES);
    for (size_t i = 0; i < EVICT_BYTES; i += 64) g_evict[i] = (char)i;
}

int main(int argc, char** argv) {
    const char* outdir = argc > 1 ? argv[1] : ".";
    const size_t BYTES = 1ull << 30, LINE = 128, LINES = BYTES / LINE;
    int ndev = 0;
    CK(cudaGetDeviceCount(&ndev));
    CK(cudaSetDevice(0));
    CK(cudaMalloc(&g_flush, FLUSH_BYTES));
    std::vector<Mem> mems;
    void* p = nullptr;
    CK(cudaMalloc(&p, BYTES));
    mems.push_back({"hbm_local", p});
    CK(cudaHostAlloc(&p, BYTES, cudaHostAllocMapped | cudaHostAllocPortable));
    void* dp = nullptr;
    CK(cudaHostGetDevicePointer(&dp, p, 0));
    mems.push_back({"host_pinned", dp});
    if (ndev > 1) {
        int can = 0;
        CK(cudaDeviceCanAccessPeer(&can, 0, 1));
        if (can) {
            CK(cudaDeviceEnablePeerAccess(1, 0));
            CK(cudaSetDevice(1));
            CK(cudaMalloc(&p, BYTES));
            CK(cudaMalloc(&g_flush1, FLUSH_BYTES));
            CK(cudaSetDevice(0));
            mems.push_back({"peer_hbm", p});
        } else {
            printf("device 0 cannot access device 1 as a peer\n");
        }
    }
    std::mt19937_64 rng(12345);
    // chase
    FILE* fc = fopen((std::string(outdir) + "/remote_chase.csv").c_str(), "w");
    fprintf(fc, "memory,nodes,hops,ns_per_hop\n");
    const long long NODES = 65536;
    std::vector<u64> node(NODES);
    {
        std::vector<u64> all(LINES);
        for (size_t i = 0; i < LINES; ++i) all[i] = i;
        std::shuffle(all.begin(), all.end(), rng);
        for (long long i = 0; i < NODES; ++i) node[i] = all[i] * (LINE / 8);
    }
    u64 *dnode, *dout;
    CK(cudaMalloc(&dnode, NODES * 8));
    CK(cudaMalloc(&dout, 64));
    CK(cudaMemcpy(dnode, node.data(), NODES * 8, cudaMemcpyHostToDevice));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (auto& m : mems) {
        for (int rep = 0; rep < 3; ++rep) {
            write_chain<<<(NODES + 255) / 256, 256>>>((u64*)m.ptr, dnode, NODES);
            CK(cudaGetLastError());
            CK(cudaDeviceSynchronize());
            flush_l2();
            long long hops = NODES - 1;  // each line visited once: a cold miss each
            CK(cudaEventRecord(e0));
            chase<<<1, 1>>>((const u64*)m.ptr, node[0], hops, dout);
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            float ms = 0;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            fprintf(fc, "%s,%lld,%lld,%.2f\n", m.name.c_str(), NODES, hops, ms * 1e6 / hops);
            printf("chase %-12s %.1f ns/hop\n", m.name.c_str(), ms * 1e6 / hops);
        }
    }
    fclose(fc);
    // random 128-byte line reads
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    const int SMS = prop.multiProcessorCount;
    FILE* fr = fopen((std::string(outdir) + "/remote_rand.csv").c_str(), "w");
    fprintf(fr, "memory,warps_per_sm,lines_in_flight_per_warp,lines,seconds,GBps\n");
    const long long TOTAL_LINES = 1ll << 22;  // 512 MiB of useful bytes
    std::vector<unsigned> lines(TOTAL_LINES);
    std::uniform_int_distribution<unsigned> U(0, (unsigned)LINES - 1);
    for (auto& x : lines) x = U(rng);
    unsigned* dlines;
    CK(cudaMalloc(&dlines, TOTAL_LINES * 4));
    CK(cudaMemcpy(dlines, lines.data(), TOTAL_LINES * 4, cudaMemcpyHostToDevice));
    float* sink;
    CK(cudaMalloc(&sink, 64));
    int wps[] = {1, 4, 16, 32, 64};
    for (auto& m : mems) {
        for (int w : wps) {
            long long warps = (long long)SMS * w;
            long long per_warp = (TOTAL_LINES / warps) / 4 * 4;
            if (per_warp < 4) continue;
            int threads = 32 * w > 1024 ? 1024 : 32 * w;
            long long blocks = warps * 32 / threads;
            flush_l2();
            CK(cudaEventRecord(e0));
            rand_read<4><<<blocks, threads>>>((const float*)m.ptr, dlines, per_warp, sink);
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            CK(cudaGetLastError());
            float ms = 0;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            double bytes = (double)warps * per_warp * LINE;
            fprintf(fr, "%s,%d,4,%lld,%.6f,%.2f\n", m.name.c_str(), w, warps * per_warp, ms * 1e-3,
                    bytes / (ms * 1e-3) / 1e9);
            printf("rand  %-12s %2d warps/SM %8.2f GB/s\n", m.name.c_str(), w, bytes / (ms * 1e-3) / 1e9);
        }
    }
    fclose(fr);
    return 0;
}
