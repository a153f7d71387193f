/* The GPU model's sector-cache walk (archsim/gpu/embbag.py, EmbeddingBagModel._walk's _serve) in C.
 *
 * Same semantics as the Python reference, request for request: an L1 per SM and the L2's partitions are
 * set-associative arrays of 128 B lines with a mask of valid 32 B sectors, true LRU within a set (a stamp per
 * way; the Python reference keeps a dict in insertion order, which evicts the same line). A load that misses
 * the L1 is looked up in its SM's near partition (or its persisting set-aside), then in the line's home partition, then read from HBM in
 * whole access units; a store allocates in the home (and near) partition. tests/test_gpu.py runs both and
 * compares every counter and the kernel time.
 *
 * Loaded with ctypes (no Python C API): the extension module only carries the code.
 */
#include <Python.h>
#include <stdint.h>

typedef struct {
    int64_t *tags;    /* nsets * ways, -1 = empty */
    uint32_t *masks;  /* valid sectors */
    uint64_t *stamps; /* last use */
    int64_t nsets;
    int64_t ways;
    int64_t npinned;             /* lines held in the persisting set-aside (sorted), 0: none */
    const int64_t *pinned_lines;
    uint32_t *pinned_masks;
} cache_t;

static inline int64_t find_pinned(const cache_t *c, int64_t line)
{
    int64_t lo = 0, hi = c->npinned - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) >> 1;
        int64_t v = c->pinned_lines[mid];
        if (v == line)
            return mid;
        if (v < line)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static inline uint32_t access_line(cache_t *c, int64_t set, int64_t line, uint32_t want, uint64_t *clock)
{
    if (c->npinned) {
        int64_t p = find_pinned(c, line);
        if (p >= 0) { /* a pinned line: filled on first use, never evicted, no LRU state */
            uint32_t have = c->pinned_masks[p];
            c->pinned_masks[p] = have | want;
            return want & ~have;
        }
    }
    int64_t base = set * c->ways;
    int64_t empty = -1, lru = base;
    uint64_t oldest = UINT64_MAX;
    for (int64_t w = base; w < base + c->ways; w++) {
        int64_t t = c->tags[w];
        if (t == line) {
            uint32_t have = c->masks[w];
            c->masks[w] = have | want;
            c->stamps[w] = ++*clock;
            return want & ~have;
        }
        if (t < 0) {
            if (empty < 0)
                empty = w;
        } else if (c->stamps[w] < oldest) {
            oldest = c->stamps[w];
            lru = w;
        }
    }
    int64_t w = empty >= 0 ? empty : lru;
    c->tags[w] = line;
    c->masks[w] = want;
    c->stamps[w] = ++*clock;
    return want;
}

static inline int pc(uint32_t x) { return __builtin_popcount(x); }

enum { LV_L1 = 0, LV_NEAR = 1, LV_FAR = 2, LV_HBM = 3 };

/* Serve n requests (line, sector mask) from SMs sm[i]; out[i] = the level each reached (low 4 bits) and, for a
 * miss, the sectors read from memory (the bits above). counters: l1 lookups,
 * l1 hits, l2 lookups, l2 hits, far hits, dram sectors (added to). Caches: l1 is sm_count caches of l1_sets x
 * l1_ways laid out one after another; l2 is parts caches of l2_sets x l2_ways. clocks[0] is the L1s' clock,
 * clocks[1] the L2's (a stamp counter each, as the reference's per-set order). */
int64_t gpu_serve(int64_t n, const int64_t *lines, const int64_t *masks, const int64_t *sm, const int64_t *s1,
                  const int64_t *s2, const int64_t *home, int64_t store, int64_t *out,
                  int64_t *l1_tags, uint32_t *l1_masks, uint64_t *l1_stamps, int64_t l1_sets, int64_t l1_ways,
                  int64_t *l2_tags, uint32_t *l2_masks, uint64_t *l2_stamps, int64_t l2_sets, int64_t l2_ways,
                  const int64_t *part_of_sm, int64_t dup, int64_t hbm_sectors, int64_t full, uint64_t *clocks,
                  int64_t *counters, int64_t npinned, const int64_t *pinned_lines, uint32_t *pinned_masks)
{
    int64_t l1_size = l1_sets * l1_ways, l2_size = l2_sets * l2_ways;
    for (int64_t i = 0; i < n; i++) {
        int64_t line = lines[i];
        uint32_t want = (uint32_t)masks[i];
        int nb = pc(want);
        int64_t near = part_of_sm[sm[i]];
        uint32_t miss;
        if (!store) {
            cache_t c1 = {l1_tags + sm[i] * l1_size, l1_masks + sm[i] * l1_size, l1_stamps + sm[i] * l1_size,
                          l1_sets, l1_ways, 0, NULL, NULL};
            counters[0] += nb;
            miss = access_line(&c1, s1[i], line, want, &clocks[0]);
            counters[1] += nb - pc(miss);
            if (!miss) {
                out[i] = LV_L1;
                continue;
            }
        } else {
            miss = want;
        }
        int m = pc(miss);
        int64_t h = home[i];
        cache_t ch = {l2_tags + h * l2_size, l2_masks + h * l2_size, l2_stamps + h * l2_size, l2_sets, l2_ways,
                      npinned, pinned_lines, pinned_masks + h * npinned};
        cache_t cn = {l2_tags + near * l2_size, l2_masks + near * l2_size, l2_stamps + near * l2_size, l2_sets,
                      l2_ways, npinned, pinned_lines, pinned_masks + near * npinned};
        if (store) {
            access_line(&ch, s2[i], line, miss, &clocks[1]);
            int64_t looks = (int64_t)m * ((dup && h != near) ? 2 : 1);
            if (dup && h != near)
                access_line(&cn, s2[i], line, miss, &clocks[1]);
            counters[2] += looks;
            counters[3] += looks;
            out[i] = LV_NEAR;
            continue;
        }
        uint32_t m2, far;
        if (dup || h == near) {
            uint32_t m1 = access_line(&cn, s2[i], line, miss, &clocks[1]);
            counters[2] += m;
            counters[3] += m - pc(m1);
            if (h == near || !m1) {
                m2 = m1;
                far = 0;
            } else {
                m2 = access_line(&ch, s2[i], line, m1, &clocks[1]);
                counters[2] += pc(m1);
                counters[3] += pc(m1) - pc(m2);
                far = m1 & ~m2;
            }
        } else {
            m2 = access_line(&ch, s2[i], line, miss, &clocks[1]);
            counters[2] += m;
            counters[3] += m - pc(m2);
            far = h != near ? (miss & ~m2) : 0;
        }
        counters[4] += pc(far);
        if (m2) {
            uint32_t unit = 0, x = m2, blk_mask = (uint32_t)((1u << hbm_sectors) - 1);
            while (x) {
                int low = __builtin_ctz(x);
                uint32_t blk = blk_mask << (low - low % hbm_sectors);
                unit |= blk;
                x &= ~blk;
            }
            unit &= (uint32_t)full;
            counters[5] += pc(unit);
            if (unit != m2) {
                access_line(&ch, s2[i], line, unit, &clocks[1]);
                if (dup && h != near)
                    access_line(&cn, s2[i], line, unit, &clocks[1]);
            }
            out[i] = LV_HBM | ((int64_t)pc(unit) << 4); /* the level, and the sectors read from memory */
        } else {
            out[i] = far ? LV_FAR : LV_NEAR;
        }
    }
    return 0;
}

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_csector", "sector-cache walk (ctypes entry: gpu_serve)",
                                 -1, NULL};

PyMODINIT_FUNC PyInit__csector(void) { return PyModule_Create(&mod); }
