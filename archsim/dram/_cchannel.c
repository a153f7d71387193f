/*
 * _cchannel: the compiled engine of one DRAM channel controller.
 *
 * This is a line-by-line port of archsim/dram/controller.py (ChannelController) and
 * archsim/dram/channel_state.py (ChannelState).  The Python classes stay the reference: every function
 * below names the Python method it mirrors, keeps its control flow, and must give bit-identical results
 * (tests/test_cchannel.py runs both engines side by side).  The Python subclass CChannelController
 * (controller.py) takes every parameter from a reference controller built for the same spec and hands them
 * to Channel._setup.
 *
 * What lives here:
 *   - the per-level timing state and the compiled constraint tables (ChannelState.ready/apply);
 *   - the queues (read queue, write buffer, per-bank command queues or the unified active list), the
 *     pending-address maps, the return heap, refresh and the counters;
 *   - the cycle loop (_tick, _pick, _schedule_transaction, _next_event_cycle, ...) and its SimPy glue:
 *     completions and space notifications are ordinary SimPy events scheduled at their exact picosecond;
 *   - the Loop: ONE SimPy wake-up event and one cycle loop shared by all channels of a memory system
 *     (share_loop; a channel made on its own has a loop of its own).  When it fires it processes cycles in
 *     global cycle order, every channel due in a cycle, until env.peek() or a cycle that emitted an event,
 *     exactly as the reference's per-channel wake-ups would (see "the shared loop" below);
 *   - an optional "source" of the loop: the trace driver's loop (archsim/system/trace_driver.py) moved inside
 *     the cycle loop, for a memory fed by a TraceDriver only.  Its requests carry no Python object and no
 *     done event; the driver's resumptions (after a space notification, a completion or a trace timestamp)
 *     happen inline at the same simulated instants, so the loop only returns to SimPy when another event is
 *     due (env.peek()) or an event outside the channels is triggered (the driver's `finished`).
 *
 * The shared loop.  In the reference every channel has its own wake-up event (URGENT, at a cycle edge) and
 * runs ahead in its callback until env.peek() or until it emits.  Channels do not share state, so only the
 * ORDER of the events they emit at equal picoseconds (completions and notifications, NORMAL priority, ordered
 * by SimPy's insertion id) depends on how their cycles interleave.  In the reference, all the channels that
 * process cycle c either do so in their wake-up callbacks at c*tCK (URGENT: before any NORMAL event of that
 * picosecond, in the insertion order of their wake-ups), or a single channel does so while running ahead with
 * nothing else pending up to c*tCK.  The loop reproduces this: each channel carries `wseq`, the position of
 * its reference wake-up in SimPy's insertion order (a new one each time the reference would schedule a new
 * wake-up: a submit that moves the channel's cycle earlier, or the end of a callback that leaves the channel
 * due; between two such points the reference assigns no other id, so numbering at every processed cycle gives
 * the same order), and the channels due in a cycle are processed in `wseq` order.  The loop stops after a
 * cycle in which any channel emitted (the reference's later channels of that cycle see the emitted event in
 * env.peek() and stop after the cycle too) or before a cycle at or past env.peek().  Stale wake-ups in the
 * SimPy queue (of the reference or of this loop) only split a run in two with nothing happening in between.
 * Two corners are not reproduced (neither occurs in archsim): channels of two memory systems in one simulation
 * are ordered by their systems' loops, not interleaved by wake-up id, and a foreign event scheduled URGENT with
 * a positive delay onto a cycle edge is not interleaved between the channels of that edge (SimPy's own URGENT
 * events are created at the current time, after every wake-up of their picosecond, in both engines).
 *
 * Requests live in a pool of slots addressed by index (never by pointer: the pool may move when it grows).
 * A slot holds one reference per role: "queued" (in a queue or a pending-address list, released when its
 * column command issues) and "returning" (in the return heap).  It is freed when both are gone.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stddef.h>

#include "_cchannel.h"

typedef int64_t i64;
typedef uint64_t u64;

#define NEVER (((i64)1) << 62)
#define NCMD 7
enum { C_ACT, C_PRE, C_RD, C_WR, C_RDA, C_WRA, C_REF };
#define IS_COL(c) ((c) >= C_RD && (c) <= C_WRA)
#define IS_READ_CMD(c) ((c) == C_RD || (c) == C_RDA)

/* hierarchy levels of the constraint tables */
enum { L_BANK, L_BG, L_RANK, L_CHAN, NLEVEL };
static const char *LEVEL_NAMES[NLEVEL] = {"bank", "bankgroup", "rank", "channel"};

typedef struct Loop Loop;
typedef struct Host Host; /* the compiled host engine (_chost.h) */
typedef struct Nmp Nmp;   /* the compiled NMP engine (_cnmp.h) */
typedef struct Sched Sched; /* their heap (_csched.h) */
typedef struct Fab Fab;     /* the host engine's CXL path (_cfab.h) */

/* what the pending SimPy wake-up event is for */
enum { WAKE_CHANNEL, WAKE_SOURCE };

/* what the source (the inlined trace driver) waits for */
enum { SRC_OFF, SRC_RUN, SRC_SPACE, SRC_SLOT, SRC_DONE };

/* interned attribute names, created at module init */
static PyObject *s_now, *s_peek, *s_schedule, *s_callbacks, *s_ok, *s_value, *s_done, *s_t_done, *s_t_accept,
    *s_added_cycle, *s_addr, *s_size, *s_is_write, *s_ch, *s_fb, *s_row, *s_col, *s_cmd, *s_record_n, *s_on_wake;

/* the Loop type (created at module init) */
static PyObject *LoopType;

/* ------------------------------------------------------------------------------------------ small vectors */

typedef struct {
    int *a;
    int n, cap;
} IVec;

static int iv_reserve(IVec *v, int need)
{
    if (need <= v->cap)
        return 0;
    int cap = v->cap ? v->cap : 8;
    while (cap < need)
        cap *= 2;
    int *a = PyMem_Realloc(v->a, (size_t)cap * sizeof(int));
    if (!a) {
        PyErr_NoMemory();
        return -1;
    }
    v->a = a;
    v->cap = cap;
    return 0;
}

static inline int iv_push(IVec *v, int x)
{
    if (v->n == v->cap && iv_reserve(v, v->n + 1) < 0)
        return -1;
    v->a[v->n++] = x;
    return 0;
}

static int iv_insert0(IVec *v, int x)
{
    if (v->n == v->cap && iv_reserve(v, v->n + 1) < 0)
        return -1;
    memmove(v->a + 1, v->a, (size_t)v->n * sizeof(int));
    v->a[0] = x;
    v->n++;
    return 0;
}

static inline void iv_del(IVec *v, int i)
{
    memmove(v->a + i, v->a + i + 1, (size_t)(v->n - i - 1) * sizeof(int));
    v->n--;
}

static inline int iv_find(const IVec *v, int x)
{
    for (int i = 0; i < v->n; i++)
        if (v->a[i] == x)
            return i;
    return -1;
}

static void iv_free(IVec *v)
{
    PyMem_Free(v->a);
    v->a = NULL;
    v->n = v->cap = 0;
}

/* ------------------------------------------------------------------------------------------ requests */

typedef struct {
    u64 addr;
    i64 added;   /* accept cycle (req.added_cycle) */
    i64 index;   /* source requests: position in the trace; -1 for submitted objects */
    PyObject *obj; /* the MemRequest (owned), NULL for source requests */
    int fb, row, col, cmd;
    int is_write;
    int host;    /* a read of a compiled engine, no object: 1 the host engine (index: its line), 2 the NMP engine
                  * (index: its read) */
    int refs;    /* roles held: queued, returning */
    int next;    /* next request of the same address in a pending-read list; free-list link */
    int grp;     /* a burst of a multi-burst request: the slot holding that request (-1: none) */
    int left;    /* a multi-burst request's slot: bursts not yet completed */
} Req;

/* ------------------------------------------------------------------------------------------ address map */
/* Open addressing with linear probing and backward-shift deletion: address -> (head, tail) of a list of
 * request slots chained through Req.next (pending reads), or -> one slot (pending writes). */

typedef struct {
    u64 key;
    int head, tail; /* head < 0: empty entry */
} AEnt;

typedef struct {
    AEnt *t;
    int bits, n;
} AMap;

static inline u64 am_home(const AMap *m, u64 key)
{
    return (key * 0x9E3779B97F4A7C15ULL) >> (64 - m->bits);
}

static int am_init(AMap *m, int bits)
{
    size_t cap = (size_t)1 << bits;
    m->t = PyMem_Malloc(cap * sizeof(AEnt));
    if (!m->t) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < cap; i++)
        m->t[i].head = -1;
    m->bits = bits;
    m->n = 0;
    return 0;
}

static inline int am_find(const AMap *m, u64 key)
{
    u64 mask = ((u64)1 << m->bits) - 1;
    u64 i = am_home(m, key);
    while (m->t[i].head >= 0) {
        if (m->t[i].key == key)
            return (int)i;
        i = (i + 1) & mask;
    }
    return -1;
}

static void am_place(AMap *m, u64 key, int head, int tail)
{
    u64 mask = ((u64)1 << m->bits) - 1;
    u64 i = am_home(m, key);
    while (m->t[i].head >= 0)
        i = (i + 1) & mask;
    m->t[i].key = key;
    m->t[i].head = head;
    m->t[i].tail = tail;
    m->n++;
}

/* insert a key known to be absent */
static int am_insert(AMap *m, u64 key, int head, int tail)
{
    if ((m->n + 1) * 2 > (1 << m->bits)) {
        AMap bigger;
        if (am_init(&bigger, m->bits + 1) < 0)
            return -1;
        size_t cap = (size_t)1 << m->bits;
        for (size_t i = 0; i < cap; i++)
            if (m->t[i].head >= 0)
                am_place(&bigger, m->t[i].key, m->t[i].head, m->t[i].tail);
        PyMem_Free(m->t);
        *m = bigger;
    }
    am_place(m, key, head, tail);
    return 0;
}

static void am_delete_at(AMap *m, int idx)
{
    u64 mask = ((u64)1 << m->bits) - 1;
    u64 i = (u64)idx, j = (u64)idx;
    for (;;) {
        j = (j + 1) & mask;
        if (m->t[j].head < 0)
            break;
        u64 k = am_home(m, m->t[j].key);
        /* entry j may stay where it is if its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        m->t[i] = m->t[j];
        i = j;
    }
    m->t[i].head = -1;
    m->n--;
}

/* ------------------------------------------------------------------------------------------ return heap */

typedef struct {
    i64 cycle, seq;
    int slot;
} RetEnt;

static inline int ret_less(const RetEnt *a, const RetEnt *b)
{
    return a->cycle < b->cycle || (a->cycle == b->cycle && a->seq < b->seq);
}

/* ------------------------------------------------------------------------------------------ the channel */

typedef struct {
    int nc, d;
} Upd;

typedef struct {
    Upd *u;
    int n;
} UpdList;

typedef struct {
    PyObject_HEAD
    int ready_ok; /* _setup done */

    /* ---- configuration (from the reference ChannelController) */
    i64 tck;
    i64 read_delay;
    int unified, rq_cap, wq_cap, cq_cap, closed_page, rd_cmd, wr_cmd, hit_cap, drain_high, drain_low;
    int dual, merge_reads, ranks, banks, bgs, bpg, nbanks, ref_staggered, active_cap;
    i64 access_bytes; /* bytes of one burst (a larger request is split into bursts) */
    i64 ref_interval;
    /* address mapping (AddressMapper) */
    int ch_s, ra_s, bg_s, ba_s, ro_s, co_s, ba_w, xor_bank;
    u64 ch_m, ra_m, bg_m, ba_m, ro_m, co_m;

    /* ---- ChannelState */
    UpdList same[NLEVEL][NCMD], sib[NLEVEL][NCMD];
    int nwin[NCMD];          /* rank-level rolling windows filled and checked by each command */
    int *win_count[NCMD];
    i64 *win_span[NCMD];
    int win_keep[NCMD];
    int max_keep;
    i64 *win_times;          /* [rank][cmd][max_keep], oldest first */
    int *win_n;              /* [rank][cmd] */
    i64 *bank_t, *bg_t, *rank_t;
    i64 chan_t[NCMD];
    int *open_row, *hits, *open_in_rank, *fb_rank, *fb_bg;

    /* ---- requests and queues */
    Req *reqs;
    int nreqs, free_head;
    IVec readq, writeq, active, ref_pending;
    IVec *cmdq;
    AMap pend_rd, pend_wr;
    RetEnt *ret;
    int nret, ret_cap;
    i64 seq;
    i64 next_ref;
    int ref_rank_next;
    int cmdq_count, rr, draining, sched_blocked, write_mode;
    i64 *bwait;

    /* ---- loop */
    Loop *loop;      /* the loop that runs this channel (owned; shared by the channels of a memory system) */
    i64 cycle;       /* next cycle not yet processed */
    i64 wake_cycle;  /* the channel's pending cycle (NEVER: asleep, no wake-up in the reference) */
    i64 wseq;        /* the insertion order of the reference's pending wake-up (see "the shared loop") */
    int skip_idle;
    PyObject *space_waiters; /* list of events */

    /* ---- counters */
    i64 n_cmd[NCMD];
    i64 n_reads, n_writes, n_row_hits, n_col, n_wq_hits, n_dual;
    i64 acct_cycle;
    i64 *rank_active, *rank_idle;
    i64 *bank_open; /* bank-cycles with a row open (sum over the rank's banks), per rank */
    i64 *lat_counts; /* read latency in cycles -> reads not yet flushed into lat_hist */
    i64 lat_cap;

    /* ---- Python objects */
    PyObject *env, *event_cls, *issue_hook;
    PyObject *prio_urgent, *prio_normal;
} Channel;

/* The wake-up and cycle loop of one or more channels (one memory system), and its optional source. */
struct Loop {
    PyObject_HEAD
    int n;
    Channel **ch;      /* owned references */
    int *due;          /* scratch: the channels due in the current cycle, in wake order */
    i64 tck;           /* the channels' common clock period */
    i64 seq;           /* last wseq handed out */
    int running;       /* inside the cycle loop */

    PyObject *env, *event_cls, *on_wake, *prio_urgent, *prio_normal;
    PyObject *wake_ev; /* the scheduled SimPy wake-up (NULL: none) */
    i64 wake_ev_time;
    int wake_ev_prio, wake_kind;

    /* ---- source (inlined TraceDriver) */
    int src_state;
    int src_pending;   /* an action is due at src_T */
    i64 src_T;
    Channel *src_space; /* SRC_SPACE: the channel whose queue the head waits for (borrowed) */
    PyObject *src_it, *src_finished;
    i64 src_window, src_cycle_ps;
    int src_have_head, src_time_checked, src_exhausted, src_fin;
    u64 h_addr;
    int h_write;
    i64 h_cycle;
    int h_ch, h_fb, h_row, h_col; /* the head, decoded */
    i64 offered, completed, outstanding, last_done;
    int src_record;
    i64 *rec_acc, *rec_done;
    i64 rec_cap;

    Sched *sched;      /* the compiled engines' heap (_csched.h; NULL: no engine) */
    Host *host;        /* the compiled host engine feeding this loop (NULL: none) */
    Nmp *nmp;          /* the compiled NMP engine feeding this loop (NULL: none) */
    Fab *fab;          /* the compiled CXL fabric (_cfab.h: the host engine's CXL path, PIFS-Rec; NULL: none) */
};

/* ------------------------------------------------------------------------------------------ helpers */

static int get_i64(PyObject *o, i64 *out)
{
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = (i64)v;
    return 0;
}

static int now_ps(PyObject *env, i64 *out)
{
    PyObject *o = PyObject_GetAttr(env, s_now);
    if (!o)
        return -1;
    int r = get_i64(o, out);
    Py_DECREF(o);
    return r;
}

/* env.peek() as an integer picosecond; "infinity" becomes a huge value */
static int peek_ps(PyObject *env, i64 *out)
{
    PyObject *o = PyObject_CallMethodNoArgs(env, s_peek);
    if (!o)
        return -1;
    if (PyFloat_Check(o)) {
        double d = PyFloat_AS_DOUBLE(o);
        Py_DECREF(o);
        if (d >= 9.0e18) {
            *out = INT64_MAX;
        } else {
            i64 v = (i64)d;
            if ((double)v < d) /* integer times x satisfy x >= d iff x >= ceil(d) */
                v += 1;
            *out = v;
        }
        return 0;
    }
    int r = get_i64(o, out);
    Py_DECREF(o);
    return r;
}

/* complete_at(env, ev, value, when): trigger ev successfully at absolute time `when` (>= now) */
static int complete_at(PyObject *env, PyObject *ev, PyObject *value, i64 when, PyObject *prio)
{
    i64 now;
    if (now_ps(env, &now) < 0)
        return -1;
    if (PyObject_SetAttr(ev, s_ok, Py_True) < 0 || PyObject_SetAttr(ev, s_value, value) < 0)
        return -1;
    PyObject *delay = PyLong_FromLongLong(when - now);
    if (!delay)
        return -1;
    PyObject *r = PyObject_CallMethodObjArgs(env, s_schedule, ev, prio, delay, NULL);
    Py_DECREF(delay);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* a new SimPy event with `cb` as its one callback */
static PyObject *new_event(PyObject *event_cls, PyObject *env, PyObject *cb)
{
    PyObject *ev = PyObject_CallOneArg(event_cls, env);
    if (!ev)
        return NULL;
    if (cb) {
        PyObject *cbs = PyObject_GetAttr(ev, s_callbacks);
        if (!cbs || PyList_Append(cbs, cb) < 0) {
            Py_XDECREF(cbs);
            Py_DECREF(ev);
            return NULL;
        }
        Py_DECREF(cbs);
    }
    return ev;
}

/* ------------------------------------------------------------------------------------------ request pool */

static int req_alloc(Channel *s)
{
    if (s->free_head < 0) {
        int n = s->nreqs ? s->nreqs * 2 : 256;
        Req *r = PyMem_Realloc(s->reqs, (size_t)n * sizeof(Req));
        if (!r) {
            PyErr_NoMemory();
            return -1;
        }
        for (int i = s->nreqs; i < n; i++) {
            r[i].obj = NULL;
            r[i].refs = 0;
            r[i].next = (i + 1 < n) ? i + 1 : -1;
        }
        s->free_head = s->nreqs;
        s->reqs = r;
        s->nreqs = n;
    }
    int i = s->free_head;
    s->free_head = s->reqs[i].next;
    s->reqs[i].next = -1;
    s->reqs[i].refs = 0;
    s->reqs[i].obj = NULL;
    s->reqs[i].grp = -1;
    s->reqs[i].host = 0;
    return i;
}

static void req_unref(Channel *s, int i)
{
    Req *r = &s->reqs[i];
    if (--r->refs > 0)
        return;
    PyObject *obj = r->obj;
    r->obj = NULL;
    r->next = s->free_head;
    s->free_head = i;
    Py_XDECREF(obj);
}

/* ------------------------------------------------------------------------------------------ ChannelState */

/* ChannelState.ready: earliest cycle `cmd` may issue to flat bank `fb` (windows included) */
static inline i64 st_ready(const Channel *s, int cmd, int fb)
{
    int r = s->fb_rank[fb];
    i64 t = s->bank_t[fb * NCMD + cmd];
    i64 v = s->bg_t[s->fb_bg[fb] * NCMD + cmd];
    if (v > t)
        t = v;
    v = s->rank_t[r * NCMD + cmd];
    if (v > t)
        t = v;
    v = s->chan_t[cmd];
    if (v > t)
        t = v;
    if (s->nwin[cmd]) {
        int base = (r * NCMD + cmd);
        int n = s->win_n[base];
        const i64 *times = s->win_times + (i64)base * s->max_keep;
        for (int w = 0; w < s->nwin[cmd]; w++) {
            int count = s->win_count[cmd][w];
            if (n >= count) {
                v = times[n - count] + s->win_span[cmd][w];
                if (v > t)
                    t = v;
            }
        }
    }
    return t;
}

/* ChannelState.ref_ready */
static i64 st_ref_ready(const Channel *s, int rank)
{
    i64 t = 0;
    int base = rank * s->banks;
    for (int fb = base; fb < base + s->banks; fb++) {
        i64 v = st_ready(s, C_REF, fb);
        if (v > t)
            t = v;
    }
    return t;
}

static inline void raise_row(i64 *row, const UpdList *ul, i64 clk)
{
    for (int k = 0; k < ul->n; k++) {
        i64 v = clk + ul->u[k].d;
        if (row[ul->u[k].nc] < v)
            row[ul->u[k].nc] = v;
    }
}

/* ChannelState.apply_rank: the rank- and channel-level part of apply, and the rolling windows */
static void st_apply_rank(Channel *s, int cmd, int r, i64 clk)
{
    raise_row(s->rank_t + r * NCMD, &s->same[L_RANK][cmd], clk);
    if (s->sib[L_RANK][cmd].n) {
        for (int o = 0; o < s->ranks; o++)
            if (o != r)
                raise_row(s->rank_t + o * NCMD, &s->sib[L_RANK][cmd], clk);
    }
    raise_row(s->chan_t, &s->same[L_CHAN][cmd], clk);
    if (s->nwin[cmd]) {
        int base = r * NCMD + cmd;
        i64 *times = s->win_times + (i64)base * s->max_keep;
        int n = s->win_n[base];
        int keep = s->win_keep[cmd];
        if (n == keep) { /* append then drop the oldest */
            memmove(times, times + 1, (size_t)(n - 1) * sizeof(i64));
            times[n - 1] = clk;
        } else {
            times[n] = clk;
            s->win_n[base] = n + 1;
        }
    }
}

/* ChannelState.apply: raise the earliest-issue cycles after `cmd` issues to bank `fb` at `clk` */
static void st_apply(Channel *s, int cmd, int fb, i64 clk)
{
    int r = s->fb_rank[fb];
    raise_row(s->bank_t + fb * NCMD, &s->same[L_BANK][cmd], clk);
    if (s->sib[L_BANK][cmd].n) {
        int g0 = s->fb_bg[fb] * s->bpg;
        for (int ob = g0; ob < g0 + s->bpg; ob++)
            if (ob != fb)
                raise_row(s->bank_t + ob * NCMD, &s->sib[L_BANK][cmd], clk);
    }
    int bgi = s->fb_bg[fb];
    raise_row(s->bg_t + bgi * NCMD, &s->same[L_BG][cmd], clk);
    if (s->sib[L_BG][cmd].n) {
        for (int og = r * s->bgs; og < (r + 1) * s->bgs; og++)
            if (og != bgi)
                raise_row(s->bg_t + og * NCMD, &s->sib[L_BG][cmd], clk);
    }
    st_apply_rank(s, cmd, r, clk);
}

/* ------------------------------------------------------------------------------------------ returns */

static int push_return(Channel *s, i64 cycle, int slot)
{
    if (s->nret == s->ret_cap) {
        int cap = s->ret_cap ? s->ret_cap * 2 : 64;
        RetEnt *r = PyMem_Realloc(s->ret, (size_t)cap * sizeof(RetEnt));
        if (!r) {
            PyErr_NoMemory();
            return -1;
        }
        s->ret = r;
        s->ret_cap = cap;
    }
    s->seq += 1;
    RetEnt e = {cycle, s->seq, slot};
    int i = s->nret++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!ret_less(&e, &s->ret[p]))
            break;
        s->ret[i] = s->ret[p];
        i = p;
    }
    s->ret[i] = e;
    s->reqs[slot].refs++;
    return 0;
}

static RetEnt pop_return(Channel *s)
{
    RetEnt top = s->ret[0];
    RetEnt last = s->ret[--s->nret];
    int n = s->nret, i = 0;
    for (;;) {
        int l = 2 * i + 1;
        if (l >= n)
            break;
        int m = (l + 1 < n && ret_less(&s->ret[l + 1], &s->ret[l])) ? l + 1 : l;
        if (!ret_less(&s->ret[m], &last))
            break;
        s->ret[i] = s->ret[m];
        i = m;
    }
    if (n)
        s->ret[i] = last;
    return top;
}

static int record_latency(Channel *s, i64 cycles)
{
    if (cycles < 0)
        cycles = 0; /* cannot happen: a request returns after it was accepted */
    if (cycles >= s->lat_cap) {
        i64 cap = s->lat_cap ? s->lat_cap : 256;
        while (cap <= cycles)
            cap *= 2;
        i64 *a = PyMem_Realloc(s->lat_counts, (size_t)cap * sizeof(i64));
        if (!a) {
            PyErr_NoMemory();
            return -1;
        }
        memset(a + s->lat_cap, 0, (size_t)(cap - s->lat_cap) * sizeof(i64));
        s->lat_counts = a;
        s->lat_cap = cap;
    }
    s->lat_counts[cycles]++;
    return 0;
}

static int rec_grow(Loop *s, i64 index)
{
    if (index < s->rec_cap)
        return 0;
    i64 cap = s->rec_cap ? s->rec_cap : 1024;
    while (cap <= index)
        cap *= 2;
    i64 *a = PyMem_Realloc(s->rec_acc, (size_t)cap * sizeof(i64));
    if (!a) {
        PyErr_NoMemory();
        return -1;
    }
    s->rec_acc = a;
    i64 *d = PyMem_Realloc(s->rec_done, (size_t)cap * sizeof(i64));
    if (!d) {
        PyErr_NoMemory();
        return -1;
    }
    s->rec_done = d;
    for (i64 i = s->rec_cap; i < cap; i++)
        s->rec_acc[i] = s->rec_done[i] = -1;
    s->rec_cap = cap;
    return 0;
}

/* ------------------------------------------------------------------------------------------ intake */

/* The queue part of ChannelController.submit for a request accepted at cycle c. */
static int enqueue(Channel *s, int slot, i64 c)
{
    Req *r = &s->reqs[slot];
    u64 addr = r->addr;
    s->sched_blocked = 0;
    if (r->is_write) {
        if (am_find(&s->pend_wr, addr) < 0) {
            if (am_insert(&s->pend_wr, addr, slot, slot) < 0 || iv_push(&s->writeq, slot) < 0)
                return -1;
            s->reqs[slot].refs++;
        }
        return push_return(s, c + 1, slot);
    }
    if (am_find(&s->pend_wr, addr) >= 0) {
        s->n_wq_hits += 1;
        return push_return(s, c + 1, slot);
    }
    int e = am_find(&s->pend_rd, addr);
    if (e < 0) {
        if (am_insert(&s->pend_rd, addr, slot, slot) < 0 || iv_push(&s->readq, slot) < 0)
            return -1;
    } else {
        AEnt *ent = &s->pend_rd.t[e];
        s->reqs[ent->tail].next = slot;
        ent->tail = slot;
        if (!s->merge_reads && iv_push(&s->readq, slot) < 0)
            return -1;
    }
    s->reqs[slot].refs++;
    return 0;
}

static int can_accept_c(const Channel *s, int is_write)
{
    return is_write ? s->writeq.n < s->wq_cap : s->readq.n < s->rq_cap;
}

/* ------------------------------------------------------------------------------------------ refresh */

/* _refresh_command: precharge the pending rank's open banks, then REF once all are closed and ready */
static int refresh_command(Channel *s, i64 c, int *cmd, int *fb_out)
{
    int r = s->ref_pending.a[0];
    int base = r * s->banks;
    int all_closed = 1;
    for (int fb = base; fb < base + s->banks; fb++) {
        if (s->open_row[fb] >= 0) {
            all_closed = 0;
            if (st_ready(s, C_PRE, fb) <= c) {
                *cmd = C_PRE;
                *fb_out = fb;
                return 1;
            }
        }
    }
    if (all_closed && st_ref_ready(s, r) <= c) {
        *cmd = C_REF;
        *fb_out = base;
        return 1;
    }
    return 0;
}

/* _refresh_wait */
static i64 refresh_wait(Channel *s)
{
    int r = s->ref_pending.a[0];
    int base = r * s->banks;
    i64 t = NEVER;
    int any_open = 0;
    for (int fb = base; fb < base + s->banks; fb++) {
        if (s->open_row[fb] >= 0) {
            any_open = 1;
            i64 v = st_ready(s, C_PRE, fb);
            if (v < t)
                t = v;
        }
    }
    if (!any_open)
        t = st_ref_ready(s, r);
    return t;
}

/* ------------------------------------------------------------------------------------------ per-bank */

/* _rw_dependency: a write may not pass an earlier read of the same row and column in its queue */
static int rw_dependency(const Channel *s, const IVec *q, int i)
{
    const Req *w = &s->reqs[q->a[i]];
    for (int j = 0; j < i; j++) {
        const Req *x = &s->reqs[q->a[j]];
        if (!x->is_write && x->row == w->row && x->col == w->col)
            return 1;
    }
    return 0;
}

/* _bank_candidate: the command bank queue `fb` would issue at c; *cmd = -1 when none, *t = earliest */
static void bank_candidate(const Channel *s, int fb, i64 c, int *cmd_out, int *slot_out, i64 *t_out)
{
    const IVec *q = &s->cmdq[fb];
    int orow = s->open_row[fb];
    if (orow < 0) {
        i64 t = st_ready(s, C_ACT, fb);
        *t_out = t;
        if (t <= c) {
            *cmd_out = C_ACT;
            *slot_out = q->a[0];
        } else {
            *cmd_out = -1;
            *slot_out = -1;
        }
        return;
    }
    i64 earliest = NEVER;
    int q0 = q->a[0];
    if (s->reqs[q0].row != orow) {
        int has_hit = 0;
        for (int i = 0; i < q->n; i++)
            if (s->reqs[q->a[i]].row == orow) {
                has_hit = 1;
                break;
            }
        if (!has_hit || s->hits[fb] >= s->hit_cap) {
            i64 t = st_ready(s, C_PRE, fb);
            if (t <= c) {
                *cmd_out = C_PRE;
                *slot_out = q0;
                *t_out = t;
                return;
            }
            earliest = t;
        }
        if (!has_hit) {
            *cmd_out = -1;
            *slot_out = -1;
            *t_out = earliest;
            return;
        }
    }
    i64 t_rd = -1, t_wr = -1;
    for (int i = 0; i < q->n; i++) {
        const Req *x = &s->reqs[q->a[i]];
        if (x->row != orow)
            continue;
        int cmd = x->cmd;
        i64 t;
        if (IS_READ_CMD(cmd)) {
            if (t_rd < 0)
                t_rd = st_ready(s, cmd, fb);
            t = t_rd;
        } else {
            if (t_wr < 0)
                t_wr = st_ready(s, cmd, fb);
            t = t_wr;
            if (rw_dependency(s, q, i))
                continue;
        }
        if (t <= c) {
            *cmd_out = cmd;
            *slot_out = q->a[i];
            *t_out = t;
            return;
        }
        if (t < earliest)
            earliest = t;
    }
    *cmd_out = -1;
    *slot_out = -1;
    *t_out = earliest;
}

/* _pick (per_bank): round robin over the bank queues, the first ready command */
static int pick_per_bank(Channel *s, i64 c, int *cmd_out, int *fb_out, int *slot_out)
{
    int n = s->nbanks;
    int skip = s->ref_pending.n ? s->ref_pending.a[0] : -1;
    int idx = s->rr;
    for (int k = 0; k < n; k++) {
        idx += 1;
        if (idx == n)
            idx = 0;
        IVec *q = &s->cmdq[idx];
        if (!q->n || s->bwait[idx] > c || idx / s->banks == skip)
            continue;
        int cmd, slot;
        i64 t;
        bank_candidate(s, idx, c, &cmd, &slot, &t);
        if (cmd >= 0) {
            s->rr = idx;
            if (cmd != C_ACT && cmd != C_PRE) {
                if (q->n == s->cq_cap)
                    s->sched_blocked = 0; /* room appeared in a full bank queue */
                iv_del(q, iv_find(q, slot));
                s->cmdq_count -= 1;
                if (s->cmdq_count == 0)
                    s->sched_blocked = 0; /* the drain condition may hold now */
            }
            *cmd_out = cmd;
            *fb_out = idx;
            *slot_out = slot;
            return 1;
        }
        s->bwait[idx] = t;
    }
    s->rr = idx;
    return 0;
}

/* _schedule_transaction: move at most one transaction into its bank's command queue; 1 moved, 2 drain
 * state changed, 0 nothing (and the scan is not repeated until a command issues or a request arrives) */
static int schedule_transaction(Channel *s)
{
    if (s->sched_blocked)
        return 0;
    if (s->draining == 0) {
        int nw = s->writeq.n;
        if (nw >= s->drain_high || (nw > s->drain_low && s->cmdq_count == 0))
            s->draining = nw;
    }
    IVec *queue = s->draining > 0 ? &s->writeq : &s->readq;
    for (int i = 0; i < queue->n; i++) {
        int slot = queue->a[i];
        const Req *r = &s->reqs[slot];
        IVec *q = &s->cmdq[r->fb];
        if (q->n < s->cq_cap) {
            if (r->is_write) {
                if (am_find(&s->pend_rd, r->addr) >= 0) {
                    s->draining = 0;
                    return 2;
                }
                s->draining -= 1;
            }
            if (iv_push(q, slot) < 0)
                return -1;
            s->bwait[r->fb] = 0;
            s->cmdq_count += 1;
            iv_del(queue, i);
            return 1;
        }
    }
    s->sched_blocked = 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ unified */

/* _need: the next command a request needs given its bank's row buffer */
static inline int need(const Channel *s, int slot)
{
    const Req *r = &s->reqs[slot];
    int orow = s->open_row[r->fb];
    if (orow < 0)
        return C_ACT;
    return orow == r->row ? r->cmd : C_PRE;
}

/* _first_ready: FR-FCFS over buf (arrival order) */
static int first_ready(const Channel *s, const IVec *buf, i64 c, int *cmd_out)
{
    for (int i = 0; i < buf->n; i++) {
        int slot = buf->a[i];
        int cmd = need(s, slot);
        if (st_ready(s, cmd, s->reqs[slot].fb) <= c) {
            *cmd_out = cmd;
            return slot;
        }
    }
    return -1;
}

/* _pick_unified: active requests first, then refresh, then the read or write queue */
static int pick_unified(Channel *s, i64 c, int *cmd_out, int *fb_out, int *slot_out)
{
    int cmd = -1;
    int slot = first_ready(s, &s->active, c, &cmd);
    if (slot < 0) {
        if (s->ref_pending.n) {
            *slot_out = -1;
            return refresh_command(s, c, cmd_out, fb_out);
        }
        int nw = s->writeq.n;
        if (s->write_mode) {
            if ((nw < s->drain_low || nw == 0) && s->readq.n) /* an empty buffer always ends write mode */
                s->write_mode = 0;
        } else if (nw > s->drain_high || !s->readq.n) {
            s->write_mode = 1;
        }
        slot = first_ready(s, s->write_mode ? &s->writeq : &s->readq, c, &cmd);
        if (slot < 0)
            return 0;
    }
    int fb = s->reqs[slot].fb;
    if (cmd == C_PRE || cmd == C_RDA || cmd == C_WRA) {
        for (int i = 0; i < s->active.n; i++) {
            int a = s->active.a[i];
            if (s->reqs[a].fb == fb && a != slot)
                return 0; /* do not close a row an activated request still needs */
        }
    }
    *cmd_out = cmd;
    *fb_out = fb;
    *slot_out = slot;
    return 1;
}

/* _unified_issued: move a request between the queues after its command issued */
static int unified_issued(Channel *s, int cmd, int slot)
{
    IVec *home = s->reqs[slot].is_write ? &s->writeq : &s->readq;
    if (cmd == C_ACT) {
        if (s->active.n < s->active_cap && iv_find(&s->active, slot) < 0) {
            int i = iv_find(home, slot);
            if (i < 0) {
                PyErr_SetString(PyExc_RuntimeError, "request not in its queue");
                return -1;
            }
            iv_del(home, i);
            if (iv_push(&s->active, slot) < 0)
                return -1;
        }
    } else if (cmd != C_PRE) {
        int i = iv_find(&s->active, slot);
        if (i >= 0) {
            iv_del(&s->active, i);
        } else {
            i = iv_find(home, slot);
            if (i < 0) {
                PyErr_SetString(PyExc_RuntimeError, "request not in its queue");
                return -1;
            }
            iv_del(home, i);
        }
    }
    return 0;
}

static i64 unified_wait(const Channel *s)
{
    i64 t = NEVER;
    const IVec *bufs[3] = {&s->active, &s->readq, &s->writeq};
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < bufs[b]->n; i++) {
            int slot = bufs[b]->a[i];
            i64 v = st_ready(s, need(s, slot), s->reqs[slot].fb);
            if (v < t)
                t = v;
        }
    return t;
}

static int pick(Channel *s, i64 c, int *cmd, int *fb, int *slot)
{
    if (s->unified)
        return pick_unified(s, c, cmd, fb, slot);
    return pick_per_bank(s, c, cmd, fb, slot);
}

/* _next_event_cycle: earliest cycle >= c at which processing a cycle can change anything */
static i64 next_event_cycle(Channel *s, i64 c)
{
    i64 t = s->next_ref;
    if (s->nret && s->ret[0].cycle < t)
        t = s->ret[0].cycle;
    if (s->ref_pending.n) {
        i64 v = refresh_wait(s);
        if (v < t)
            t = v;
    }
    if (s->unified) {
        i64 v = unified_wait(s);
        if (v < t)
            t = v;
    } else if (s->cmdq_count) {
        int skip = s->ref_pending.n ? s->ref_pending.a[0] : -1;
        for (int idx = 0; idx < s->nbanks; idx++) {
            if (s->cmdq[idx].n && idx / s->banks != skip) {
                i64 v = s->bwait[idx];
                if (v < c) {
                    int cmd, slot;
                    bank_candidate(s, idx, c, &cmd, &slot, &v);
                    s->bwait[idx] = v;
                }
                if (v < t)
                    t = v;
            }
        }
    }
    return t > c ? t : c;
}

/* ------------------------------------------------------------------------------------------ issue */

/* _account: book background cycles [acct_cycle, c) with the rank states before a change at c */
static void account(Channel *s, i64 c)
{
    i64 n = c - s->acct_cycle;
    if (n > 0) {
        for (int r = 0; r < s->ranks; r++) {
            if (s->open_in_rank[r]) {
                s->rank_active[r] += n;
                s->bank_open[r] += (i64)s->open_in_rank[r] * n;
            } else
                s->rank_idle[r] += n;
        }
        s->acct_cycle = c;
    }
}

/* _issue */
static int issue(Channel *s, int cmd, int fb, int slot, i64 c)
{
    if (s->issue_hook) { /* observation hook (tests trace the command stream through it) */
        int hs = (slot >= 0 && s->reqs[slot].grp >= 0) ? s->reqs[slot].grp : slot;
        PyObject *req = (hs >= 0 && s->reqs[hs].obj) ? s->reqs[hs].obj : Py_None;
        PyObject *r = PyObject_CallFunction(s->issue_hook, "iiOL", cmd, fb, req, (long long)c);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    s->bwait[fb] = 0;
    s->n_cmd[cmd] += 1;
    if (s->unified && slot >= 0 && unified_issued(s, cmd, slot) < 0)
        return -1;
    if (IS_COL(cmd)) {
        s->n_col += 1;
        if (s->hits[fb])
            s->n_row_hits += 1;
        s->hits[fb] += 1;
        u64 addr = s->reqs[slot].addr;
        if (IS_READ_CMD(cmd)) {
            i64 done = c + s->read_delay;
            int e = am_find(&s->pend_rd, addr);
            if (e < 0) {
                PyErr_SetString(PyExc_KeyError, "issued read has no pending entry");
                return -1;
            }
            if (s->merge_reads) {
                int x = s->pend_rd.t[e].head;
                am_delete_at(&s->pend_rd, e);
                while (x >= 0) {
                    int nx = s->reqs[x].next;
                    s->reqs[x].next = -1;
                    if (push_return(s, done, x) < 0)
                        return -1;
                    req_unref(s, x); /* leaves the pending list */
                    x = nx;
                }
            } else {
                AEnt *ent = &s->pend_rd.t[e];
                int prev = -1, x = ent->head;
                while (x >= 0 && x != slot) {
                    prev = x;
                    x = s->reqs[x].next;
                }
                if (x < 0) {
                    PyErr_SetString(PyExc_ValueError, "issued read not in its pending list");
                    return -1;
                }
                int nx = s->reqs[x].next;
                if (prev < 0)
                    ent->head = nx;
                else
                    s->reqs[prev].next = nx;
                if (ent->tail == x)
                    ent->tail = prev;
                s->reqs[x].next = -1;
                if (ent->head < 0)
                    am_delete_at(&s->pend_rd, e);
                if (push_return(s, done, slot) < 0)
                    return -1;
                req_unref(s, slot);
            }
        } else {
            int e = am_find(&s->pend_wr, addr);
            if (e >= 0)
                am_delete_at(&s->pend_wr, e);
            req_unref(s, slot); /* the write leaves the queues */
        }
        st_apply(s, cmd, fb, c);
        if (cmd == C_RDA || cmd == C_WRA) {
            account(s, c);
            s->open_row[fb] = -1;
            s->hits[fb] = 0;
            s->open_in_rank[s->fb_rank[fb]] -= 1;
        }
    } else if (cmd == C_ACT) {
        account(s, c);
        st_apply(s, C_ACT, fb, c);
        s->open_row[fb] = s->reqs[slot].row;
        s->hits[fb] = 0;
        s->open_in_rank[s->fb_rank[fb]] += 1;
    } else if (cmd == C_PRE) {
        account(s, c);
        st_apply(s, C_PRE, fb, c);
        s->open_row[fb] = -1;
        s->hits[fb] = 0;
        s->open_in_rank[s->fb_rank[fb]] -= 1;
    } else { /* REF */
        st_apply_rank(s, C_REF, s->fb_rank[fb], c);
        iv_del(&s->ref_pending, 0);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ one cycle */

static int engine_space(Loop *g, long code, i64 when);

static int notify_space(Channel *s, i64 c)
{
    PyObject *waiters = s->space_waiters;
    s->space_waiters = PyList_New(0);
    if (!s->space_waiters) {
        s->space_waiters = waiters;
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(waiters);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyList_GET_ITEM(waiters, i);
        int rc = PyLong_CheckExact(w) ? engine_space(s->loop, PyLong_AsLong(w), c * s->tck)
                                      : complete_at(s->env, w, Py_None, c * s->tck, s->prio_normal);
        if (rc < 0) {
            Py_DECREF(waiters);
            return -1;
        }
    }
    Py_DECREF(waiters);
    return 0;
}

/* A completed request of the source (trace position idx): the driver's _on_done. */
static int source_done(Loop *g, i64 idx, i64 now)
{
    g->outstanding -= 1;
    g->completed += 1;
    g->last_done = now;
    if (g->src_record && idx >= 0 && idx < g->rec_cap)
        g->rec_done[idx] = now;
    if (g->src_state == SRC_SLOT) { /* the slot event resumes the driver at this instant */
        g->src_state = SRC_RUN;
        g->src_pending = 1;
        g->src_T = now;
    }
    return 0;
}

/* Trigger the driver's `finished` event at `when` (an event outside the channels: the loop must return). */
static int source_finish(Loop *g, i64 when)
{
    g->src_fin = 1;
    g->src_state = SRC_DONE;
    g->src_pending = 0;
    if (g->src_finished)
        return complete_at(g->env, g->src_finished, Py_None, when, g->prio_normal);
    return 0;
}

static int host_dram_done(Loop *g, i64 line, i64 now);
static int nmp_dram_done(Loop *g, i64 ri, i64 now);
static int fab_dram_done(Loop *g, i64 ri, i64 now);

/* _tick: process cycle c.  *busy: something happened; *emitted: an event outside the channel was
 * triggered (the loop must return to SimPy). */
static int tick(Channel *s, i64 c, int *busy_out, int *emitted_out)
{
    Loop *g = s->loop;
    int emitted = 0, returned = 0;
    if (s->nret && s->ret[0].cycle <= c) {
        i64 now = c * s->tck;
        while (s->nret && s->ret[0].cycle <= c) {
            RetEnt e = pop_return(s);
            int slot = e.slot;
            Req *r = &s->reqs[slot];
            if (!r->is_write) {
                if (record_latency(s, c - r->added) < 0)
                    return -1;
                s->n_reads += 1;
            } else {
                s->n_writes += 1;
            }
            PyObject *obj = r->obj;
            int gslot = r->grp;
            int eng = r->host;
            i64 eidx = r->index;
            if (gslot >= 0) { /* a burst of a multi-burst request: the request completes with its last */
                Req *gr = &s->reqs[gslot];
                if (--gr->left != 0) {
                    req_unref(s, gslot);
                    req_unref(s, slot);
                    returned = 1;
                    continue;
                }
                obj = gr->obj;
                eng = gr->host;
                eidx = gr->index;
            }
            if (obj) {
                PyObject *t = PyLong_FromLongLong(now);
                if (!t)
                    return -1;
                int rc = PyObject_SetAttr(obj, s_t_done, t);
                Py_DECREF(t);
                if (rc < 0)
                    return -1;
                PyObject *done = PyObject_GetAttr(obj, s_done);
                if (!done)
                    return -1;
                if (done != Py_None) {
                    rc = complete_at(s->env, done, obj, now, s->prio_normal);
                    Py_DECREF(done);
                    if (rc < 0)
                        return -1;
                } else {
                    Py_DECREF(done);
                }
                emitted = 1;
            } else if (eng == 1) {
                if (host_dram_done(g, eidx, now) < 0)
                    return -1;
            } else if (eng == 2) {
                if (nmp_dram_done(g, eidx, now) < 0)
                    return -1;
            } else if (eng == 3) {
                if (fab_dram_done(g, eidx, now) < 0)
                    return -1;
            } else {
                source_done(g, r->index, now);
                if (g->src_exhausted && !g->src_fin && g->completed == g->offered) {
                    if (source_finish(g, now) < 0)
                        return -1;
                    emitted = 1;
                }
            }
            if (gslot >= 0)
                req_unref(s, gslot);
            req_unref(s, slot);
            returned = 1;
        }
    }
    if (c >= s->next_ref) {
        if (s->ref_staggered) {
            int r = s->ref_rank_next;
            if (iv_push(&s->ref_pending, r) < 0)
                return -1;
            s->ref_rank_next = (r + 1) % s->ranks;
        } else {
            for (int r = 0; r < s->ranks; r++)
                if (iv_push(&s->ref_pending, r) < 0)
                    return -1;
        }
        s->next_ref += s->ref_interval;
    }
    int issued = 0, have = 0, cmd = -1, fb = -1, slot = -1;
    if (s->ref_pending.n && !s->unified)
        have = refresh_command(s, c, &cmd, &fb);
    if (!have)
        have = pick(s, c, &cmd, &fb, &slot);
    if (have) {
        if (issue(s, cmd, fb, slot, c) < 0)
            return -1;
        issued = 1;
        if (s->dual) {
            int cmd2 = -1, fb2 = -1, slot2 = -1;
            if (pick(s, c, &cmd2, &fb2, &slot2)) {
                if (IS_COL(cmd2) != IS_COL(cmd)) {
                    if (issue(s, cmd2, fb2, slot2, c) < 0)
                        return -1;
                    s->n_dual += 1;
                } else if (slot2 >= 0 && IS_COL(cmd2)) {
                    /* not issued; unreachable with JEDEC tables (no two column commands in one cycle),
                     * kept so a request is never lost */
                    if (iv_insert0(&s->cmdq[fb2], slot2) < 0)
                        return -1;
                    s->cmdq_count += 1;
                }
            }
        }
    }
    int moved = 0, notify = 0;
    int src_waits = g->src_state == SRC_SPACE && g->src_space == s;
    int waiters = PyList_GET_SIZE(s->space_waiters) > 0 || src_waits;
    if (!s->unified) {
        moved = schedule_transaction(s);
        if (moved < 0)
            return -1;
        notify = moved == 1 && waiters;
    } else {
        notify = issued && waiters;
    }
    if (notify) {
        if (PyList_GET_SIZE(s->space_waiters) > 0) {
            if (notify_space(s, c) < 0)
                return -1;
            emitted = 1;
        }
        if (src_waits) { /* the driver resumes at this instant */
            g->src_state = SRC_RUN;
            g->src_space = NULL;
            g->src_pending = 1;
            g->src_T = c * s->tck;
        }
    }
    *busy_out = issued || moved || returned || notify;
    *emitted_out = emitted;
    return 0;
}

/* _catch_up: process, synchronously, the refresh cycles an idle channel skipped before `until` */
static int catch_up(Channel *s, i64 until)
{
    i64 c = s->cycle;
    for (;;) {
        i64 nxt = next_event_cycle(s, c);
        if (nxt >= until)
            break;
        int busy, emitted;
        if (tick(s, nxt, &busy, &emitted) < 0)
            return -1;
        c = nxt + 1;
    }
    s->cycle = c;
    return 0;
}

/* ------------------------------------------------------------------------------------------ wake-ups */

/* Schedule the loop's one wake-up event at (when, prio); an earlier pending one becomes stale. */
static int schedule_wake(Loop *g, i64 when, int prio, int kind)
{
    PyObject *ev = new_event(g->event_cls, g->env, g->on_wake);
    if (!ev)
        return -1;
    if (complete_at(g->env, ev, Py_None, when, prio ? g->prio_normal : g->prio_urgent) < 0) {
        Py_DECREF(ev);
        return -1;
    }
    Py_XSETREF(g->wake_ev, ev);
    g->wake_ev_time = when;
    g->wake_ev_prio = prio;
    g->wake_kind = kind;
    return 0;
}

/* The channel's part of _wake: channel s is due at `cycle` (earlier pending cycles stay).  A new pending
 * cycle is a new wake-up event in the reference: it goes to the back of the wake order. */
static inline int channel_due(Loop *g, Channel *s, i64 cycle)
{
    if (cycle >= s->wake_cycle)
        return 0;
    s->wake_cycle = cycle;
    s->wseq = ++g->seq;
    return 1;
}

/* _wake from outside the loop (a submit): make sure the loop runs at `cycle` */
static int wake(Channel *s, i64 cycle)
{
    Loop *g = s->loop;
    if (!channel_due(g, s, cycle) || g->running)
        return 0; /* inside the loop (an issue hook submitting), the loop's end schedules the wake-up */
    i64 when = cycle * g->tck;
    if (g->wake_ev && (g->wake_ev_time < when || (g->wake_ev_time == when && g->wake_ev_prio == 0)))
        return 0; /* the pending wake-up comes first and resumes the channel too */
    return schedule_wake(g, when, 0, WAKE_CHANNEL);
}

/* the earliest pending cycle of the loop's channels (NEVER: all asleep) */
static inline i64 loop_next_cycle(const Loop *g)
{
    i64 m = NEVER;
    for (int i = 0; i < g->n; i++)
        if (g->ch[i]->wake_cycle < m)
            m = g->ch[i]->wake_cycle;
    return m;
}

/* Return to SimPy with the channels due at their pending cycles and the source possibly due at src_T. */
static int suspend(Loop *g)
{
    i64 c = loop_next_cycle(g);
    if (g->src_pending && (c >= NEVER || g->src_T < c * g->tck))
        return schedule_wake(g, g->src_T, 1, WAKE_SOURCE);
    if (c >= NEVER)
        return 0; /* idle until a request arrives */
    return schedule_wake(g, c * g->tck, 0, WAKE_CHANNEL);
}

/* ------------------------------------------------------------------------------------------ source */

static void decode(const Channel *s, u64 addr, int *ch, int *fb, int *row, int *col);

/* Fetch the next trace record into the head; 0: got one, 1: exhausted, -1: error. */
static int source_fetch(Loop *g)
{
    PyObject *item = PyIter_Next(g->src_it);
    if (!item)
        return PyErr_Occurred() ? -1 : 1;
    PyObject *a, *w, *cy;
    PyObject *tup = NULL;
    if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 3) {
        a = PyTuple_GET_ITEM(item, 0);
        w = PyTuple_GET_ITEM(item, 1);
        cy = PyTuple_GET_ITEM(item, 2);
    } else {
        tup = PySequence_Tuple(item);
        if (!tup) {
            Py_DECREF(item);
            return -1;
        }
        if (PyTuple_GET_SIZE(tup) != 3) {
            PyErr_Format(PyExc_ValueError, "trace records are (addr, is_write, cycle), got %zd values",
                         PyTuple_GET_SIZE(tup));
            Py_DECREF(tup);
            Py_DECREF(item);
            return -1;
        }
        a = PyTuple_GET_ITEM(tup, 0);
        w = PyTuple_GET_ITEM(tup, 1);
        cy = PyTuple_GET_ITEM(tup, 2);
    }
    int rc = 0;
    unsigned long long addr = PyLong_AsUnsignedLongLong(a);
    long long cyc = 0;
    int wr = -1;
    if (addr == (unsigned long long)-1 && PyErr_Occurred())
        rc = -1;
    if (rc == 0 && (wr = PyObject_IsTrue(w)) < 0)
        rc = -1;
    if (rc == 0) {
        cyc = PyLong_AsLongLong(cy);
        if (cyc == -1 && PyErr_Occurred())
            rc = -1;
    }
    Py_XDECREF(tup);
    Py_DECREF(item);
    if (rc < 0)
        return -1;
    int ch, fb, row, col;
    decode(g->ch[0], addr, &ch, &fb, &row, &col); /* every channel of a system has the same mapping */
    if (ch < 0 || ch >= g->n) {
        PyErr_Format(PyExc_ValueError, "address 0x%llx maps to channel %d of %d", addr, ch, g->n);
        return -1;
    }
    g->h_addr = addr;
    g->h_write = wr;
    g->h_cycle = cyc;
    g->h_ch = ch;
    g->h_fb = fb;
    g->h_row = row;
    g->h_col = col;
    g->src_have_head = 1;
    g->src_time_checked = 0;
    return 0;
}

/* The driver's loop body at time T (TraceDriver._run), until it blocks.  Each submit makes its channel due
 * at the accept cycle (a new wake-up in the reference).  *emitted: the driver's `finished` was triggered. */
static int source_act(Loop *g, i64 T, int *emitted)
{
    g->src_pending = 0;
    for (;;) {
        if (!g->src_have_head) {
            int rc = source_fetch(g);
            if (rc < 0)
                return -1;
            if (rc == 1) {
                g->src_exhausted = 1;
                if (g->completed == g->offered) {
                    if (source_finish(g, T) < 0)
                        return -1;
                    *emitted = 1;
                } else {
                    g->src_state = SRC_DONE;
                }
                return 0;
            }
        }
        if (!g->src_time_checked) {
            g->src_time_checked = 1;
            if (g->h_cycle >= 0) {
                i64 t = g->h_cycle * g->src_cycle_ps;
                if (t > T) { /* env.timeout(t - now) */
                    g->src_state = SRC_RUN;
                    g->src_pending = 1;
                    g->src_T = t;
                    return 0;
                }
            }
        }
        if (g->src_window && g->outstanding >= g->src_window) {
            g->src_state = SRC_SLOT;
            return 0;
        }
        Channel *s = g->ch[g->h_ch];
        if (!can_accept_c(s, g->h_write)) {
            g->src_state = SRC_SPACE;
            g->src_space = s;
            return 0;
        }
        /* DRAMSystem.submit -> ChannelController.submit at time T */
        i64 c = T / s->tck + 1;
        if (c < s->cycle)
            c = s->cycle;
        if (s->wake_cycle >= NEVER && s->next_ref < c && catch_up(s, c) < 0)
            return -1;
        int slot = req_alloc(s);
        if (slot < 0)
            return -1;
        Req *r = &s->reqs[slot];
        r->addr = g->h_addr;
        r->is_write = g->h_write;
        r->fb = g->h_fb;
        r->row = g->h_row;
        r->col = g->h_col;
        r->cmd = r->is_write ? s->wr_cmd : s->rd_cmd;
        r->added = c;
        r->index = g->offered;
        if (g->src_record) {
            if (rec_grow(g, g->offered) < 0)
                return -1;
            g->rec_acc[g->offered] = c * s->tck;
        }
        s->reqs[slot].refs++; /* held while being queued */
        int rc = enqueue(s, slot, c);
        req_unref(s, slot);
        if (rc < 0)
            return -1;
        g->src_have_head = 0;
        g->outstanding += 1;
        g->offered += 1;
        channel_due(g, s, c);
    }
}

/* ------------------------------------------------------------------------------------------ the loop */

/* One channel's cycle c inside the loop: _tick and what _on_wake does after it.  The channel stays due at
 * its next cycle (a new wake-up in the reference, at the end of the callback that processed c) or sleeps. */
static inline __attribute__((always_inline)) int loop_tick(Loop *g, Channel *s, i64 c, int *emitted)
{
    int busy;
    s->wake_cycle = NEVER; /* as in the reference's callback, which starts by dropping its wake-up */
    if (tick(s, c, &busy, emitted) < 0)
        return -1;
    c += 1;
    s->cycle = c;
    i64 nxt;
    if (busy) {
        nxt = c;
    } else {
        nxt = next_event_cycle(s, c);
        if (nxt < NEVER && !s->skip_idle)
            nxt = c; /* reference mode: tick every cycle */
    }
    channel_due(g, s, nxt);
    return 0;
}

/* Global cycle c: every channel due at c, in the order of their wake-ups.  *emitted: one emitted an event. */
static int loop_cycle(Loop *g, i64 c, int *emitted)
{
    if (g->n == 1)
        return loop_tick(g, g->ch[0], c, emitted);
    int k = 0;
    for (int i = 0; i < g->n; i++) {
        Channel *s = g->ch[i];
        if (s->wake_cycle != c)
            continue;
        int j = k++;
        while (j > 0 && g->ch[g->due[j - 1]]->wseq > s->wseq) {
            g->due[j] = g->due[j - 1];
            j--;
        }
        g->due[j] = i;
    }
    for (int j = 0; j < k; j++) {
        int e = 0;
        if (loop_tick(g, g->ch[g->due[j]], c, &e) < 0)
            return -1;
        *emitted |= e;
    }
    return 0;
}

/* _on_wake's loop over all channels: process the global cycles from the earliest pending one on, every
 * channel due in a cycle in wake order, and the source's actions in time order, up to the next event of the
 * rest of the simulation (`horizon`, env.peek()) or the end of a cycle that emitted an event.  The first
 * item (the one the wake-up event was scheduled for) is always processed, as _on_wake ticks its first
 * cycle. */
static int run_loop(Loop *g, i64 horizon)
{
    const i64 tck = g->tck;
    int first = 1;
    for (;;) {
        i64 c = loop_next_cycle(g);
        /* the driver acts before the next edge (an edge comes first at equal times) */
        while (g->src_pending && (c >= NEVER || g->src_T < c * tck)) {
            if (g->src_T >= horizon && !first)
                return suspend(g);
            first = 0;
            int emitted = 0;
            if (source_act(g, g->src_T, &emitted) < 0)
                return -1;
            if (emitted)
                return suspend(g);
            c = loop_next_cycle(g);
        }
        if (c >= NEVER)
            return 0; /* idle until a request arrives */
        if (c * tck >= horizon && !first)
            return suspend(g);
        first = 0;
        int emitted = 0;
        if (loop_cycle(g, c, &emitted) < 0)
            return -1;
        if (emitted)
            return suspend(g);
    }
}

/* ------------------------------------------------------------------------------------------ mapping */

static inline u64 field(u64 addr, int shift, u64 mask)
{
    return shift >= 64 ? 0 : (addr >> shift) & mask;
}

/* DRAMSystem._decode / AddressMapper.decode */
static void decode(const Channel *s, u64 addr, int *ch, int *fb, int *row, int *col)
{
    u64 ro = field(addr, s->ro_s, s->ro_m);
    u64 bg = field(addr, s->bg_s, s->bg_m);
    u64 ba = field(addr, s->ba_s, s->ba_m);
    if (s->xor_bank) {
        ba ^= ro & s->ba_m;
        bg ^= (s->ba_w >= 64 ? 0 : ro >> s->ba_w) & s->bg_m;
    }
    u64 ra = field(addr, s->ra_s, s->ra_m);
    *ch = (int)field(addr, s->ch_s, s->ch_m);
    *fb = (int)((ra * (u64)s->bgs + bg) * (u64)s->bpg + ba);
    *row = (int)ro;
    *col = (int)field(addr, s->co_s, s->co_m);
}

/* ------------------------------------------------------------------------------------------ Python: setup */

static int dict_int(PyObject *d, const char *key, i64 *out)
{
    PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
    if (!v) {
        PyErr_Format(PyExc_KeyError, "_setup: missing %s", key);
        return -1;
    }
    return get_i64(v, out);
}

#define GETI(name, dst)                                                                                          \
    do {                                                                                                         \
        i64 _v;                                                                                                  \
        if (dict_int(cfg, name, &_v) < 0)                                                                        \
            return NULL;                                                                                         \
        dst = _v;                                                                                                \
    } while (0)

/* table: list (per command) of lists of (next, delay) */
static int load_updates(PyObject *table, UpdList *out)
{
    PyObject *seq = PySequence_Fast(table, "constraint table must be a sequence");
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != NCMD) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "constraint table needs one entry per command");
        return -1;
    }
    for (int cmd = 0; cmd < NCMD; cmd++) {
        PyObject *lst = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, cmd), "updates must be a sequence");
        if (!lst) {
            Py_DECREF(seq);
            return -1;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(lst);
        out[cmd].n = (int)n;
        out[cmd].u = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Upd));
        if (!out[cmd].u) {
            Py_DECREF(lst);
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            int nc, d;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(lst, k), "ii", &nc, &d)) {
                Py_DECREF(lst);
                Py_DECREF(seq);
                return -1;
            }
            if (nc < 0 || nc >= NCMD) {
                Py_DECREF(lst);
                Py_DECREF(seq);
                PyErr_SetString(PyExc_ValueError, "bad command index in constraint table");
                return -1;
            }
            out[cmd].u[k].nc = nc;
            out[cmd].u[k].d = d;
        }
        Py_DECREF(lst);
    }
    Py_DECREF(seq);
    return 0;
}

static void *calloc_or_raise(size_t n, size_t size)
{
    void *p = PyMem_Calloc(n ? n : 1, size);
    if (!p)
        PyErr_NoMemory();
    return p;
}

static Loop *loop_new(Channel **chs, int n);

/* Channel._setup(env, event_cls, urgent, normal, cfg): cfg is the dict built by CChannelController */
static PyObject *Channel_setup(Channel *s, PyObject *args)
{
    PyObject *env, *event_cls, *urgent, *normal, *cfg;
    if (!PyArg_ParseTuple(args, "OOOOO!", &env, &event_cls, &urgent, &normal, &PyDict_Type, &cfg))
        return NULL;
    if (s->ready_ok) {
        PyErr_SetString(PyExc_RuntimeError, "_setup called twice");
        return NULL;
    }
    GETI("tck", s->tck);
    GETI("read_delay", s->read_delay);
    GETI("unified", s->unified);
    GETI("rq_cap", s->rq_cap);
    GETI("wq_cap", s->wq_cap);
    GETI("cq_cap", s->cq_cap);
    GETI("closed_page", s->closed_page);
    GETI("rd_cmd", s->rd_cmd);
    GETI("wr_cmd", s->wr_cmd);
    GETI("hit_cap", s->hit_cap);
    GETI("drain_high", s->drain_high);
    GETI("drain_low", s->drain_low);
    GETI("dual", s->dual);
    GETI("merge_reads", s->merge_reads);
    GETI("access_bytes", s->access_bytes);
    GETI("ranks", s->ranks);
    GETI("bankgroups", s->bgs);
    GETI("banks_per_group", s->bpg);
    GETI("ref_interval", s->ref_interval);
    GETI("ref_staggered", s->ref_staggered);
    GETI("next_ref", s->next_ref);
    GETI("active_cap", s->active_cap);
    GETI("ch_s", s->ch_s);
    GETI("ra_s", s->ra_s);
    GETI("bg_s", s->bg_s);
    GETI("ba_s", s->ba_s);
    GETI("ro_s", s->ro_s);
    GETI("co_s", s->co_s);
    GETI("ch_m", s->ch_m);
    GETI("ra_m", s->ra_m);
    GETI("bg_m", s->bg_m);
    GETI("ba_m", s->ba_m);
    GETI("ro_m", s->ro_m);
    GETI("co_m", s->co_m);
    GETI("ba_w", s->ba_w);
    GETI("xor_bank", s->xor_bank);
    if (s->tck <= 0 || s->ranks <= 0 || s->bgs <= 0 || s->bpg <= 0) {
        PyErr_SetString(PyExc_ValueError, "_setup: bad organisation");
        return NULL;
    }
    s->banks = s->bgs * s->bpg;
    s->nbanks = s->ranks * s->banks;
    int nb = s->nbanks;

    for (int lv = 0; lv < NLEVEL; lv++) {
        PyObject *same = PyDict_GetItemString(cfg, "same");
        PyObject *sib = PyDict_GetItemString(cfg, "sibling");
        if (!same || !sib) {
            PyErr_SetString(PyExc_KeyError, "_setup: missing constraint tables");
            return NULL;
        }
        PyObject *t1 = PyDict_GetItemString(same, LEVEL_NAMES[lv]);
        PyObject *t2 = PyDict_GetItemString(sib, LEVEL_NAMES[lv]);
        if (!t1 || !t2) {
            PyErr_Format(PyExc_KeyError, "_setup: no constraint table for level %s", LEVEL_NAMES[lv]);
            return NULL;
        }
        if (load_updates(t1, s->same[lv]) < 0 || load_updates(t2, s->sib[lv]) < 0)
            return NULL;
    }
    /* rolling windows: per command, a list of (count, span) at rank level */
    PyObject *win = PyDict_GetItemString(cfg, "windows");
    if (!win || !PySequence_Check(win) || PySequence_Size(win) != NCMD) {
        PyErr_SetString(PyExc_ValueError, "_setup: windows needs one entry per command");
        return NULL;
    }
    s->max_keep = 1;
    for (int cmd = 0; cmd < NCMD; cmd++) {
        PyObject *lst = PySequence_GetItem(win, cmd);
        if (!lst)
            return NULL;
        Py_ssize_t n = PySequence_Size(lst);
        if (n < 0) {
            Py_DECREF(lst);
            return NULL;
        }
        s->nwin[cmd] = (int)n;
        s->win_count[cmd] = calloc_or_raise((size_t)n, sizeof(int));
        s->win_span[cmd] = calloc_or_raise((size_t)n, sizeof(i64));
        if (!s->win_count[cmd] || !s->win_span[cmd]) {
            Py_DECREF(lst);
            return NULL;
        }
        int keep = 0;
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *it = PySequence_GetItem(lst, k);
            int count;
            long long span;
            int ok = it && PyArg_ParseTuple(it, "iL", &count, &span);
            Py_XDECREF(it);
            if (!ok) {
                Py_DECREF(lst);
                return NULL;
            }
            if (count < 1) {
                Py_DECREF(lst);
                PyErr_SetString(PyExc_ValueError, "_setup: window count must be >= 1");
                return NULL;
            }
            s->win_count[cmd][k] = count;
            s->win_span[cmd][k] = span;
            if (count > keep)
                keep = count;
        }
        Py_DECREF(lst);
        s->win_keep[cmd] = keep;
        if (keep > s->max_keep)
            s->max_keep = keep;
    }

    s->bank_t = calloc_or_raise((size_t)nb * NCMD, sizeof(i64));
    s->bg_t = calloc_or_raise((size_t)s->ranks * s->bgs * NCMD, sizeof(i64));
    s->rank_t = calloc_or_raise((size_t)s->ranks * NCMD, sizeof(i64));
    s->open_row = calloc_or_raise((size_t)nb, sizeof(int));
    s->hits = calloc_or_raise((size_t)nb, sizeof(int));
    s->open_in_rank = calloc_or_raise((size_t)s->ranks, sizeof(int));
    s->fb_rank = calloc_or_raise((size_t)nb, sizeof(int));
    s->fb_bg = calloc_or_raise((size_t)nb, sizeof(int));
    s->win_times = calloc_or_raise((size_t)s->ranks * NCMD * s->max_keep, sizeof(i64));
    s->win_n = calloc_or_raise((size_t)s->ranks * NCMD, sizeof(int));
    s->cmdq = calloc_or_raise((size_t)nb, sizeof(IVec));
    s->bwait = calloc_or_raise((size_t)nb, sizeof(i64));
    s->rank_active = calloc_or_raise((size_t)s->ranks, sizeof(i64));
    s->rank_idle = calloc_or_raise((size_t)s->ranks, sizeof(i64));
    s->bank_open = calloc_or_raise((size_t)s->ranks, sizeof(i64));
    if (!s->bank_t || !s->bg_t || !s->rank_t || !s->open_row || !s->hits || !s->open_in_rank || !s->fb_rank ||
        !s->fb_bg || !s->win_times || !s->win_n || !s->cmdq || !s->bwait || !s->rank_active || !s->rank_idle ||
        !s->bank_open)
        return NULL;
    for (int fb = 0; fb < nb; fb++) {
        s->open_row[fb] = -1;
        s->fb_rank[fb] = fb / s->banks;
        s->fb_bg[fb] = fb / s->bpg;
    }
    if (am_init(&s->pend_rd, 7) < 0 || am_init(&s->pend_wr, 7) < 0)
        return NULL;
    s->space_waiters = PyList_New(0);
    if (!s->space_waiters)
        return NULL;
    Py_INCREF(env);
    s->env = env;
    Py_INCREF(event_cls);
    s->event_cls = event_cls;
    Py_INCREF(urgent);
    s->prio_urgent = urgent;
    Py_INCREF(normal);
    s->prio_normal = normal;
    /* a loop of its own until share_loop() puts it into a memory system's */
    Loop *g = loop_new(&s, 1);
    if (!g)
        return NULL;
    s->loop = g;
    s->ready_ok = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ Python: methods */

#define CHECK_READY(s)                                                                                           \
    do {                                                                                                         \
        if (!(s)->ready_ok) {                                                                                    \
            PyErr_SetString(PyExc_RuntimeError, "channel not set up");                                           \
            return NULL;                                                                                         \
        }                                                                                                        \
    } while (0)

static PyObject *Channel_can_accept(Channel *s, PyObject *arg)
{
    CHECK_READY(s);
    int w = PyObject_IsTrue(arg);
    if (w < 0)
        return NULL;
    return PyBool_FromLong(can_accept_c(s, w));
}

static PyObject *Channel_space_event(Channel *s, PyObject *Py_UNUSED(ignored))
{
    CHECK_READY(s);
    PyObject *ev = new_event(s->event_cls, s->env, NULL);
    if (!ev)
        return NULL;
    if (PyList_Append(s->space_waiters, ev) < 0) {
        Py_DECREF(ev);
        return NULL;
    }
    return ev;
}

static int attr_int(PyObject *obj, PyObject *name, int *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (!v)
        return -1;
    long x = PyLong_AsLong(v);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = (int)x;
    return 0;
}

static int set_attr_i64(PyObject *obj, PyObject *name, i64 v)
{
    PyObject *o = PyLong_FromLongLong(v);
    if (!o)
        return -1;
    int r = PyObject_SetAttr(obj, name, o);
    Py_DECREF(o);
    return r;
}

/* ChannelController.submit(req): req carries its decoded fields (_fb, _row, _col, _cmd) */
/* A request of several bursts (an NMP instruction's row): one queue entry per burst, at consecutive
 * addresses, all accepted at cycle c; the request object completes when its last burst returns. */
static PyObject *submit_bursts(Channel *s, PyObject *req, u64 addr, int is_write, int cmd, i64 nburst, i64 c)
{
    int g = req_alloc(s);
    if (g < 0)
        return NULL;
    Py_INCREF(req);
    s->reqs[g].obj = req;
    s->reqs[g].refs = 1;
    s->reqs[g].left = (int)nburst;
    s->reqs[g].index = -1;
    s->reqs[g].addr = addr;
    s->reqs[g].is_write = is_write;
    for (i64 b = 0; b < nburst; b++) {
        int slot = req_alloc(s);
        if (slot < 0)
            return NULL;
        Req *r = &s->reqs[slot];
        u64 a = addr + (u64)(b * s->access_bytes);
        int ch, fb, row, col;
        decode(s, a, &ch, &fb, &row, &col);
        r->addr = a;
        r->is_write = is_write;
        r->fb = fb;
        r->row = row;
        r->col = col;
        r->cmd = cmd;
        r->added = c;
        r->index = -1;
        r->grp = g;
        r->refs = 1;
        s->reqs[g].refs++; /* each burst holds its request */
        int rc = enqueue(s, slot, c);
        req_unref(s, slot);
        if (rc < 0)
            return NULL;
    }
    req_unref(s, g); /* now held by the bursts only */
    if (wake(s, c) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Channel_submit(Channel *s, PyObject *req)
{
    CHECK_READY(s);
    i64 now;
    if (now_ps(s->env, &now) < 0)
        return NULL;
    i64 c = now / s->tck + 1;
    if (c < s->cycle)
        c = s->cycle;
    /* read everything first, so that a bad request leaves the channel untouched */
    PyObject *a = PyObject_GetAttr(req, s_addr);
    if (!a)
        return NULL;
    unsigned long long addr = PyLong_AsUnsignedLongLong(a);
    Py_DECREF(a);
    if (addr == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    PyObject *w = PyObject_GetAttr(req, s_is_write);
    if (!w)
        return NULL;
    int is_write = PyObject_IsTrue(w);
    Py_DECREF(w);
    if (is_write < 0)
        return NULL;
    int fb, row, col, cmd;
    if (attr_int(req, s_fb, &fb) < 0 || attr_int(req, s_row, &row) < 0 || attr_int(req, s_col, &col) < 0 ||
        attr_int(req, s_cmd, &cmd) < 0)
        return NULL;
    if (fb < 0 || fb >= s->nbanks || cmd < 0 || cmd >= NCMD) {
        PyErr_SetString(PyExc_ValueError, "request decoded outside this channel");
        return NULL;
    }
    if (set_attr_i64(req, s_added_cycle, c) < 0 || set_attr_i64(req, s_t_accept, c * s->tck) < 0)
        return NULL;
    i64 size = s->access_bytes;
    PyObject *sz = PyObject_GetAttr(req, s_size);
    if (!sz)
        return NULL;
    size = PyLong_AsLongLong(sz);
    Py_DECREF(sz);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    i64 nburst = size > s->access_bytes ? (size + s->access_bytes - 1) / s->access_bytes : 1;
    if (nburst > 1) { /* every burst must stay in this channel */
        int ch0, ch1, f, ro, co;
        decode(s, addr, &ch0, &f, &ro, &co);
        for (i64 b = 1; b < nburst; b++) {
            decode(s, addr + (u64)(b * s->access_bytes), &ch1, &f, &ro, &co);
            if (ch1 != ch0 || f < 0 || f >= s->nbanks) {
                PyErr_SetString(PyExc_ValueError, "a multi-burst request must stay in one channel");
                return NULL;
            }
        }
    }
    if (set_attr_i64(req, s_added_cycle, c) < 0 || set_attr_i64(req, s_t_accept, c * s->tck) < 0)
        return NULL;
    if (s->wake_cycle >= NEVER && s->next_ref < c && catch_up(s, c) < 0)
        return NULL;
    if (nburst > 1)
        return submit_bursts(s, req, addr, is_write, cmd, nburst, c);
    int slot = req_alloc(s);
    if (slot < 0)
        return NULL;
    Req *r = &s->reqs[slot];
    r->addr = addr;
    r->is_write = is_write;
    r->fb = fb;
    r->row = row;
    r->col = col;
    r->cmd = cmd;
    r->added = c;
    r->index = -1;
    Py_INCREF(req);
    r->obj = req;
    r->refs = 1; /* held while being queued */
    int rc = enqueue(s, slot, c);
    req_unref(s, slot);
    if (rc < 0)
        return NULL;
    if (wake(s, c) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ChannelController.close_accounting(end_cycle) */
static PyObject *Channel_close_accounting(Channel *s, PyObject *arg)
{
    CHECK_READY(s);
    i64 end;
    if (get_i64(arg, &end) < 0)
        return NULL;
    if (s->wake_cycle >= NEVER && s->next_ref < end && catch_up(s, end) < 0)
        return NULL;
    account(s, end);
    Py_RETURN_NONE;
}

/* flush the read latencies gathered since the last flush into a Histogram (record_n per distinct value) */
static PyObject *Channel_flush_latency(Channel *s, PyObject *hist)
{
    CHECK_READY(s);
    for (i64 i = 0; i < s->lat_cap; i++) {
        i64 n = s->lat_counts[i];
        if (!n)
            continue;
        PyObject *v = PyLong_FromLongLong(i * s->tck);
        PyObject *k = PyLong_FromLongLong(n);
        PyObject *r = (v && k) ? PyObject_CallMethodObjArgs(hist, s_record_n, v, k, NULL) : NULL;
        Py_XDECREF(v);
        Py_XDECREF(k);
        if (!r)
            return NULL;
        Py_DECREF(r);
        s->lat_counts[i] = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *Channel_pending_latency(Channel *s, PyObject *Py_UNUSED(ignored))
{
    CHECK_READY(s);
    for (i64 i = 0; i < s->lat_cap; i++)
        if (s->lat_counts[i])
            Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* decode(addr) -> (channel, flat bank, row, column) */
static PyObject *Channel_decode(Channel *s, PyObject *arg)
{
    CHECK_READY(s);
    unsigned long long addr = PyLong_AsUnsignedLongLong(arg);
    if (addr == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int ch, fb, row, col;
    decode(s, addr, &ch, &fb, &row, &col);
    return Py_BuildValue("iiii", ch, fb, row, col);
}

/* decode_request(req): DRAMSystem._decode in one call: sets req._ch, _fb, _row, _col and _cmd (this
 * channel's read or write command; every channel of a system has the same controller) */
static PyObject *Channel_decode_request(Channel *s, PyObject *req)
{
    CHECK_READY(s);
    PyObject *a = PyObject_GetAttr(req, s_addr);
    if (!a)
        return NULL;
    unsigned long long addr = PyLong_AsUnsignedLongLong(a);
    Py_DECREF(a);
    if (addr == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    PyObject *w = PyObject_GetAttr(req, s_is_write);
    if (!w)
        return NULL;
    int is_write = PyObject_IsTrue(w);
    Py_DECREF(w);
    if (is_write < 0)
        return NULL;
    int ch, fb, row, col;
    decode(s, addr, &ch, &fb, &row, &col);
    if (set_attr_i64(req, s_ch, ch) < 0 || set_attr_i64(req, s_fb, fb) < 0 || set_attr_i64(req, s_row, row) < 0 ||
        set_attr_i64(req, s_col, col) < 0 || set_attr_i64(req, s_cmd, is_write ? s->wr_cmd : s->rd_cmd) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Channel_set_issue_hook(Channel *s, PyObject *fn)
{
    if (fn == Py_None) {
        Py_CLEAR(s->issue_hook);
    } else {
        Py_INCREF(fn);
        Py_XSETREF(s->issue_hook, fn);
    }
    Py_RETURN_NONE;
}

static PyObject *Channel_get_issue_hook(Channel *s, PyObject *Py_UNUSED(ignored))
{
    if (s->issue_hook)
        return Py_NewRef(s->issue_hook);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ Python: attributes */

static PyObject *i64_list(const i64 *a, int n)
{
    PyObject *l = PyList_New(n);
    if (!l)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLongLong(a ? a[i] : 0);
        if (!v) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, v);
    }
    return l;
}

static PyObject *get_n_cmd(Channel *s, void *Py_UNUSED(c)) { return i64_list(s->n_cmd, NCMD); }
static PyObject *get_rank_active(Channel *s, void *Py_UNUSED(c)) { return i64_list(s->rank_active, s->ranks); }
static PyObject *get_rank_idle(Channel *s, void *Py_UNUSED(c)) { return i64_list(s->rank_idle, s->ranks); }
static PyObject *get_bank_open(Channel *s, void *Py_UNUSED(c)) { return i64_list(s->bank_open, s->ranks); }

static PyObject *get_skip_idle(Channel *s, void *Py_UNUSED(c)) { return PyBool_FromLong(s->skip_idle); }
static int set_skip_idle(Channel *s, PyObject *v, void *Py_UNUSED(c))
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete skip_idle");
        return -1;
    }
    int b = PyObject_IsTrue(v);
    if (b < 0)
        return -1;
    s->skip_idle = b;
    return 0;
}

/* plain 64-bit counters, read-only, by offset */
#define I64_GETTER(name)                                                                                         \
    static PyObject *get_##name(Channel *s, void *Py_UNUSED(c)) { return PyLong_FromLongLong(s->name); }
I64_GETTER(n_reads)
I64_GETTER(n_writes)
I64_GETTER(n_row_hits)
I64_GETTER(n_col)
I64_GETTER(n_wq_hits)
I64_GETTER(n_dual)
I64_GETTER(cycle)
I64_GETTER(next_ref)
I64_GETTER(acct_cycle)
I64_GETTER(wseq)

static PyObject *get_wake_cycle(Channel *s, void *Py_UNUSED(c)) { return PyLong_FromLongLong(s->wake_cycle); }
static PyObject *get_queued(Channel *s, void *Py_UNUSED(c))
{
    return Py_BuildValue("iii", s->readq.n, s->writeq.n, s->unified ? s->active.n : s->cmdq_count);
}
static PyObject *get_source_active(Channel *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->loop && s->loop->src_state != SRC_OFF);
}
static PyObject *get_loop(Channel *s, void *Py_UNUSED(c))
{
    if (s->loop)
        return Py_NewRef((PyObject *)s->loop);
    Py_RETURN_NONE;
}

static PyGetSetDef Channel_getset[] = {
    {"n_cmd", (getter)get_n_cmd, NULL, "commands issued, by command index", NULL},
    {"rank_active", (getter)get_rank_active, NULL, "cycles with a row open, per rank", NULL},
    {"rank_idle", (getter)get_rank_idle, NULL, "cycles with all banks precharged, per rank", NULL},
    {"bank_open", (getter)get_bank_open, NULL, "bank-cycles with a row open (sum over banks), per rank", NULL},
    {"skip_idle", (getter)get_skip_idle, (setter)set_skip_idle, "skip idle cycles (False: tick every cycle)",
     NULL},
    {"n_reads", (getter)get_n_reads, NULL, NULL, NULL},
    {"n_writes", (getter)get_n_writes, NULL, NULL, NULL},
    {"n_row_hits", (getter)get_n_row_hits, NULL, NULL, NULL},
    {"n_col", (getter)get_n_col, NULL, NULL, NULL},
    {"n_wq_hits", (getter)get_n_wq_hits, NULL, NULL, NULL},
    {"n_dual", (getter)get_n_dual, NULL, NULL, NULL},
    {"cycle", (getter)get_cycle, NULL, "next cycle not yet processed", NULL},
    {"wake_cycle", (getter)get_wake_cycle, NULL, "the channel's pending cycle", NULL},
    {"next_ref", (getter)get_next_ref, NULL, NULL, NULL},
    {"acct_cycle", (getter)get_acct_cycle, NULL, NULL, NULL},
    {"queued", (getter)get_queued, NULL, "(read queue, write buffer, command queues or active) lengths", NULL},
    {"wseq", (getter)get_wseq, NULL, "the position of the channel's pending wake-up in the wake order", NULL},
    {"source_active", (getter)get_source_active, NULL, "a source is attached to the channel's loop", NULL},
    {"_loop", (getter)get_loop, NULL, "the Loop that runs this channel", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Channel_methods[] = {
    {"_setup", (PyCFunction)Channel_setup, METH_VARARGS, "configure (env, event class, URGENT, NORMAL, params)"},
    {"can_accept", (PyCFunction)Channel_can_accept, METH_O, "can_accept(is_write) -> bool"},
    {"space_event", (PyCFunction)Channel_space_event, METH_NOARGS, "an event fired when queue space may appear"},
    {"submit", (PyCFunction)Channel_submit, METH_O, "take a decoded MemRequest"},
    {"close_accounting", (PyCFunction)Channel_close_accounting, METH_O, "book cycles up to end_cycle"},
    {"_flush_latency", (PyCFunction)Channel_flush_latency, METH_O, "record gathered read latencies"},
    {"_pending_latency", (PyCFunction)Channel_pending_latency, METH_NOARGS, "latencies not yet flushed?"},
    {"decode", (PyCFunction)Channel_decode, METH_O, "decode(addr) -> (channel, flat bank, row, column)"},
    {"decode_request", (PyCFunction)Channel_decode_request, METH_O, "set req._ch, _fb, _row, _col, _cmd"},
    {"_set_issue_hook", (PyCFunction)Channel_set_issue_hook, METH_O, "call fn(cmd, fb, req, cycle) per command"},
    {"_get_issue_hook", (PyCFunction)Channel_get_issue_hook, METH_NOARGS, "the issue hook or None"},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------------------------------ Python: type */

static PyObject *Channel_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw))
{
    Channel *s = (Channel *)type->tp_alloc(type, 0);
    if (!s)
        return NULL;
    s->free_head = -1;
    s->wake_cycle = NEVER;
    s->next_ref = NEVER;
    s->skip_idle = 1;
    return (PyObject *)s;
}

static int Channel_traverse(Channel *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->env);
    Py_VISIT(s->event_cls);
    Py_VISIT(s->issue_hook);
    Py_VISIT(s->loop);
    Py_VISIT(s->space_waiters);
    Py_VISIT(s->prio_urgent);
    Py_VISIT(s->prio_normal);
    for (int i = 0; i < s->nreqs; i++)
        Py_VISIT(s->reqs[i].obj);
    return 0;
}

static int Channel_clear(Channel *s)
{
    Py_CLEAR(s->env);
    Py_CLEAR(s->event_cls);
    Py_CLEAR(s->issue_hook);
    Py_CLEAR(s->loop);
    Py_CLEAR(s->space_waiters);
    Py_CLEAR(s->prio_urgent);
    Py_CLEAR(s->prio_normal);
    for (int i = 0; i < s->nreqs; i++)
        Py_CLEAR(s->reqs[i].obj);
    return 0;
}

static void Channel_dealloc(Channel *s)
{
    PyTypeObject *tp = Py_TYPE(s);
    PyObject_GC_UnTrack(s);
    Channel_clear(s);
    for (int lv = 0; lv < NLEVEL; lv++)
        for (int c = 0; c < NCMD; c++) {
            PyMem_Free(s->same[lv][c].u);
            PyMem_Free(s->sib[lv][c].u);
        }
    for (int c = 0; c < NCMD; c++) {
        PyMem_Free(s->win_count[c]);
        PyMem_Free(s->win_span[c]);
    }
    PyMem_Free(s->win_times);
    PyMem_Free(s->win_n);
    PyMem_Free(s->bank_t);
    PyMem_Free(s->bg_t);
    PyMem_Free(s->rank_t);
    PyMem_Free(s->open_row);
    PyMem_Free(s->hits);
    PyMem_Free(s->open_in_rank);
    PyMem_Free(s->fb_rank);
    PyMem_Free(s->fb_bg);
    PyMem_Free(s->reqs);
    iv_free(&s->readq);
    iv_free(&s->writeq);
    iv_free(&s->active);
    iv_free(&s->ref_pending);
    if (s->cmdq)
        for (int i = 0; i < s->nbanks; i++)
            iv_free(&s->cmdq[i]);
    PyMem_Free(s->cmdq);
    PyMem_Free(s->pend_rd.t);
    PyMem_Free(s->pend_wr.t);
    PyMem_Free(s->ret);
    PyMem_Free(s->bwait);
    PyMem_Free(s->rank_active);
    PyMem_Free(s->rank_idle);
    PyMem_Free(s->bank_open);
    PyMem_Free(s->lat_counts);
    tp->tp_free((PyObject *)s);
    Py_DECREF(tp);
}

static PyType_Slot Channel_slots[] = {
    {Py_tp_doc, "The compiled engine of one channel controller (see archsim.dram.controller)."},
    {Py_tp_new, Channel_new},
    {Py_tp_dealloc, Channel_dealloc},
    {Py_tp_traverse, Channel_traverse},
    {Py_tp_clear, Channel_clear},
    {Py_tp_methods, Channel_methods},
    {Py_tp_getset, Channel_getset},
    {0, NULL},
};

static PyType_Spec Channel_spec = {
    .name = "archsim.dram._cchannel.Channel",
    .basicsize = sizeof(Channel),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Channel_slots,
};

/* ------------------------------------------------------------------------------------------ Python: Loop */

static PyObject *ChannelType;

/* A loop running channels chs[0..n) (their env, event class, priorities and clock taken from chs[0]). */
static Loop *loop_new(Channel **chs, int n)
{
    Loop *g = (Loop *)((PyTypeObject *)LoopType)->tp_alloc((PyTypeObject *)LoopType, 0);
    if (!g)
        return NULL;
    g->ch = PyMem_Calloc((size_t)n, sizeof(Channel *));
    g->due = PyMem_Calloc((size_t)n, sizeof(int));
    if (!g->ch || !g->due) {
        Py_DECREF(g);
        PyErr_NoMemory();
        return NULL;
    }
    for (int i = 0; i < n; i++)
        g->ch[i] = (Channel *)Py_NewRef((PyObject *)chs[i]);
    g->n = n;
    Channel *c0 = chs[0];
    g->tck = c0->tck;
    g->env = Py_NewRef(c0->env);
    g->event_cls = Py_NewRef(c0->event_cls);
    g->prio_urgent = Py_NewRef(c0->prio_urgent);
    g->prio_normal = Py_NewRef(c0->prio_normal);
    g->src_state = SRC_OFF;
    g->on_wake = PyObject_GetAttr((PyObject *)g, s_on_wake);
    if (!g->on_wake) {
        Py_DECREF(g);
        return NULL;
    }
    return g;
}

#include "_csched.h"
static int fab_send(Fab *f, u64 line, i64 now);
static i64 fab_dram_lo(const Fab *f);
static i64 fab_dram_hi(const Fab *f);
static void fab_free(Fab *f);
static int fab_traverse(Fab *f, visitproc visit, void *arg);
#include "_chost.h"
#include "_cnmp.h"
#include "_cfab.h"

static i64 fab_dram_lo(const Fab *f) { return f->dram_lo; }
static i64 fab_dram_hi(const Fab *f) { return f->dram_hi; }

/* a channel's space notification for an engine's waiter: the drain runs at the key its event would take */
static int engine_space(Loop *g, long code, i64 when)
{
    return hpush(g->sched, when, SK_DRAIN, 0, code, 0);
}

static int engine_drain(Loop *g, long code, i64 now)
{
    int engine = (int)(code >> 24), e = (int)((code >> 12) & 0xFFF), k = (int)(code & 0xFFF);
    if (engine == 1 && g->host)
        return host_drain(g->host, k, now);
    if (engine == 2 && g->nmp)
        return nmp_drain(g->nmp, k, now);
    if (engine == 3 && g->fab)
        return fab_drain(g->fab, e, k, now);
    PyErr_SetString(PyExc_RuntimeError, "a space notification for no engine");
    return -1;
}

static int sched_act(Loop *g, const HRec *r)
{
    if (r->kind == SK_DRAIN)
        return engine_drain(g, (long)r->b, r->t);
    if (r->kind >= FK_L1_DELIVER)
        return fab_act(g->fab, r);
    if (r->kind >= NK_BASE)
        return nmp_act(g->nmp, r);
    return host_act(g->host, r);
}

/* Loop._on_wake(ev): the SimPy callback of the loop's wake-up event */
static PyObject *Loop_on_wake(Loop *g, PyObject *ev)
{
    if (ev != g->wake_ev)
        Py_RETURN_NONE; /* superseded by an earlier wake-up */
    Py_CLEAR(g->wake_ev);
    if (g->sched)
        return run_from_python(g, 1, 1, 0);
    i64 horizon;
    if (peek_ps(g->env, &horizon) < 0)
        return NULL;
    return run_from_python(g, 0, 0, horizon);
}

/* attach_source(iterable, window, cycle_ps, finished, record): feed the loop's channels from a trace, the
 * way TraceDriver does, inside the cycle loop; the driver starts at the current time */
static PyObject *Loop_attach_source(Loop *g, PyObject *args)
{
    PyObject *iterable, *finished;
    long long window, cycle_ps;
    int record;
    if (!PyArg_ParseTuple(args, "OLLOp", &iterable, &window, &cycle_ps, &finished, &record))
        return NULL;
    if (g->src_state != SRC_OFF || g->host) {
        PyErr_SetString(PyExc_RuntimeError, "a source or a host engine is already attached");
        return NULL;
    }
    int idle = !g->wake_ev && !g->running && g->n > 0;
    for (int i = 0; i < g->n; i++) {
        Channel *s = g->ch[i];
        if (s->wake_cycle < NEVER || s->nret || s->readq.n || s->writeq.n || s->cmdq_count)
            idle = 0;
    }
    if (!idle) {
        PyErr_SetString(PyExc_RuntimeError, "attach_source needs idle channels");
        return NULL;
    }
    PyObject *it = PyObject_GetIter(iterable);
    if (!it)
        return NULL;
    i64 now;
    if (now_ps(g->env, &now) < 0) {
        Py_DECREF(it);
        return NULL;
    }
    g->src_it = it;
    g->src_finished = Py_NewRef(finished);
    g->src_window = window;
    g->src_cycle_ps = cycle_ps;
    g->src_record = record;
    g->src_state = SRC_RUN;
    g->src_pending = 1;
    g->src_T = now;
    /* the driver process would start with an Initialize event (URGENT) at now */
    if (schedule_wake(g, now, 0, WAKE_SOURCE) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* request_times() -> list of (t_accept, t_done) of the source's requests in trace order (record=True) */
static PyObject *Loop_request_times(Loop *g, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    for (i64 i = 0; i < g->offered && i < g->rec_cap; i++) {
        PyObject *t = Py_BuildValue("LL", (long long)g->rec_acc[i], (long long)g->rec_done[i]);
        if (!t || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
    }
    return out;
}

#define LOOP_I64_GETTER(name, field)                                                                             \
    static PyObject *loop_get_##name(Loop *g, void *Py_UNUSED(c)) { return PyLong_FromLongLong(g->field); }
LOOP_I64_GETTER(offered, offered)
LOOP_I64_GETTER(completed, completed)
LOOP_I64_GETTER(outstanding, outstanding)
LOOP_I64_GETTER(last_done, last_done)
LOOP_I64_GETTER(wake_seq, seq)

static PyObject *loop_get_exhausted(Loop *g, void *Py_UNUSED(c)) { return PyBool_FromLong(g->src_exhausted); }
static PyObject *loop_get_source_active(Loop *g, void *Py_UNUSED(c))
{
    return PyBool_FromLong(g->src_state != SRC_OFF);
}
static PyObject *loop_get_host_active(Loop *g, void *Py_UNUSED(c)) { return PyBool_FromLong(g->host != NULL); }
static PyObject *loop_get_channels(Loop *g, void *Py_UNUSED(c))
{
    PyObject *t = PyTuple_New(g->n);
    if (!t)
        return NULL;
    for (int i = 0; i < g->n; i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef((PyObject *)g->ch[i]));
    return t;
}
static PyObject *loop_get_wake_time(Loop *g, void *Py_UNUSED(c))
{
    if (!g->wake_ev)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(g->wake_ev_time);
}

static PyGetSetDef Loop_getset[] = {
    {"channels", (getter)loop_get_channels, NULL, "the channels this loop runs", NULL},
    {"wake_time", (getter)loop_get_wake_time, NULL, "time of the pending wake-up (None: none)", NULL},
    {"wake_seq", (getter)loop_get_wake_seq, NULL, "wake-ups handed out (see wseq)", NULL},
    {"src_offered", (getter)loop_get_offered, NULL, "source: requests submitted", NULL},
    {"src_completed", (getter)loop_get_completed, NULL, "source: requests completed", NULL},
    {"src_outstanding", (getter)loop_get_outstanding, NULL, "source: requests in flight", NULL},
    {"src_last_done", (getter)loop_get_last_done, NULL, "source: time of the last completion", NULL},
    {"src_exhausted", (getter)loop_get_exhausted, NULL, "source: the trace has ended", NULL},
    {"source_active", (getter)loop_get_source_active, NULL, "a source is attached", NULL},
    {"host_active", (getter)loop_get_host_active, NULL, "a host engine is attached (_chost.h)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Loop_methods[] = {
    {"_on_wake", (PyCFunction)Loop_on_wake, METH_O, "SimPy callback of the wake-up event"},
    {"attach_source", (PyCFunction)Loop_attach_source, METH_VARARGS,
     "attach_source(iterable, window, cycle_ps, finished, record)"},
    {"request_times", (PyCFunction)Loop_request_times, METH_NOARGS, "source: [(t_accept, t_done), ...]"},
    {"_on_sched", (PyCFunction)Loop_on_sched, METH_O, "SimPy callback of a compiled engine's proxy"},
    {"attach_host", (PyCFunction)Loop_attach_host, METH_VARARGS,
     "attach_host(channels, tags, line_bytes, hit_ps, to_next_ps, from_next_ps, cores, fill_buffers, static, "
     "batch_end, queue, eid, heappush, proxy_cls): the compiled host engine (_chost.h)"},
    {"host_batch", (PyCFunction)Loop_host_batch, METH_VARARGS,
     "host_batch(addrs, naddrs, lo, hi, pool_ps, nbags): start a batch's bags on the host engine"},
    {"attach_nmp", (PyCFunction)Loop_attach_nmp, METH_VARARGS,
     "attach_nmp(channels, units, cfg, bag_done, queue, eid, heappush, proxy_cls): the compiled NMP "
     "engine (_cnmp.h)"},
    {"nmp_dispatch", (PyCFunction)Loop_nmp_dispatch, METH_VARARGS, "NMP engine: dispatch bags (see _cnmp.h)"},
    {"nmp_take", (PyCFunction)Loop_nmp_take, METH_NOARGS,
     "NMP engine: (instructions, partials, bg_bus_partials, rank_bus_partials, result_bytes, unit counters)"},
    {"attach_fab", (PyCFunction)Loop_attach_fab, METH_VARARGS,
     "attach_fab(dram_lo, dram_hi, link1, fwd_ps, slot_ps, up_depth, oldest_first, spans, outputs, expanders, "
     "queue, eid, heappush, proxy_cls): the compiled CXL fabric (_cfab.h: the host engine's CXL path, PIFS-Rec)"},
    {"fab_take", (PyCFunction)Loop_fab_take, METH_NOARGS, "CXL path: its state for the Python components"},
    {"attach_pifs", (PyCFunction)Loop_attach_pifs, METH_VARARGS,
     "attach_pifs(buffer_tags, to_ps, from_ps, hit_ps, done): PIFS-Rec units on the fabric (_cfab.h)"},
    {"pifs_submit", (PyCFunction)Loop_pifs_submit, METH_VARARGS, "PIFS engine: a bag (gr, t_submit) -> index"},
    {"pifs_data", (PyCFunction)Loop_pifs_data, METH_VARARGS, "PIFS engine: the dispatch data of bags"},
    {"pifs_take", (PyCFunction)Loop_pifs_take, METH_NOARGS, "PIFS engine: its counters"},
    {"host_take", (PyCFunction)Loop_host_take, METH_NOARGS,
     "host engine: (line latencies, bag latencies, accesses, merged, sent, stalled) since the last call"},
    {NULL, NULL, 0, NULL},
};

static int Loop_traverse(Loop *g, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(g));
    for (int i = 0; i < g->n; i++)
        Py_VISIT(g->ch[i]);
    Py_VISIT(g->env);
    Py_VISIT(g->event_cls);
    Py_VISIT(g->on_wake);
    Py_VISIT(g->prio_urgent);
    Py_VISIT(g->prio_normal);
    Py_VISIT(g->wake_ev);
    Py_VISIT(g->src_it);
    Py_VISIT(g->src_finished);
    int rc = sched_traverse(g->sched, visit, arg);
    if (rc)
        return rc;
    rc = nmp_traverse(g->nmp, visit, arg);
    if (rc)
        return rc;
    rc = fab_traverse(g->fab, visit, arg);
    if (rc)
        return rc;
    return host_traverse(g->host, visit, arg);
}

static int Loop_clear(Loop *g)
{
    int n = g->n;
    g->n = 0; /* nothing runs the channels any more */
    g->src_space = NULL;
    for (int i = 0; i < n; i++)
        Py_CLEAR(g->ch[i]);
    Py_CLEAR(g->env);
    Py_CLEAR(g->event_cls);
    Py_CLEAR(g->on_wake);
    Py_CLEAR(g->prio_urgent);
    Py_CLEAR(g->prio_normal);
    Py_CLEAR(g->wake_ev);
    Py_CLEAR(g->src_it);
    Py_CLEAR(g->src_finished);
    Host *h = g->host;
    g->host = NULL;
    host_free(h);
    Nmp *nm = g->nmp;
    g->nmp = NULL;
    nmp_free(nm);
    Fab *fb = g->fab;
    g->fab = NULL;
    fab_free(fb);
    Sched *sc = g->sched;
    g->sched = NULL;
    sched_free(sc);
    return 0;
}

static void Loop_dealloc(Loop *g)
{
    PyTypeObject *tp = Py_TYPE(g);
    PyObject_GC_UnTrack(g);
    Loop_clear(g);
    PyMem_Free(g->ch);
    PyMem_Free(g->due);
    PyMem_Free(g->rec_acc);
    PyMem_Free(g->rec_done);
    tp->tp_free((PyObject *)g);
    Py_DECREF(tp);
}

static PyType_Slot Loop_slots[] = {
    {Py_tp_doc, "The wake-up event and cycle loop shared by the channels of a memory system (share_loop)."},
    {Py_tp_dealloc, Loop_dealloc},
    {Py_tp_traverse, Loop_traverse},
    {Py_tp_clear, Loop_clear},
    {Py_tp_methods, Loop_methods},
    {Py_tp_getset, Loop_getset},
    {0, NULL},
};

static PyType_Spec Loop_spec = {
    .name = "archsim.dram._cchannel.Loop",
    .basicsize = sizeof(Loop),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Loop_slots,
};

/* share_loop(channels) -> Loop: one wake-up event and one cycle loop for all `channels` (a memory system's,
 * same environment and clock).  Each channel must be idle in its current loop (no pending wake-up, no source)
 * and that loop must not run channels outside `channels`. */
static PyObject *share_loop(PyObject *Py_UNUSED(module), PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "share_loop needs a sequence of channels");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > (1 << 20)) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "share_loop needs at least one channel");
        return NULL;
    }
    Channel **chs = PyMem_Calloc((size_t)n, sizeof(Channel *));
    if (!chs) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    const char *err = NULL;
    for (Py_ssize_t i = 0; i < n && !err; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyObject_TypeCheck(o, (PyTypeObject *)ChannelType) || !((Channel *)o)->ready_ok) {
            err = "share_loop: not a set-up Channel";
            break;
        }
        Channel *s = (Channel *)o;
        chs[i] = s;
        for (Py_ssize_t j = 0; j < i; j++)
            if (chs[j] == s)
                err = "share_loop: a channel appears twice";
        if (s->env != chs[0]->env || s->tck != chs[0]->tck)
            err = "share_loop: the channels need one environment and one clock";
        Loop *old = s->loop;
        if (s->wake_cycle < NEVER || !old || old->wake_ev || old->running || old->src_state != SRC_OFF)
            err = "share_loop: the channels must be idle";
    }
    for (Py_ssize_t i = 0; i < n && !err; i++) {
        Loop *old = chs[i]->loop;
        for (int k = 0; k < old->n && !err; k++) {
            int found = 0;
            for (Py_ssize_t j = 0; j < n; j++)
                found |= old->ch[k] == chs[j];
            if (!found)
                err = "share_loop: a channel's loop runs channels not given";
        }
    }
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        PyMem_Free(chs);
        Py_DECREF(seq);
        return NULL;
    }
    Loop *g = loop_new(chs, (int)n);
    if (g) {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_INCREF(g);
            Py_XSETREF(chs[i]->loop, g);
        }
    }
    PyMem_Free(chs);
    Py_DECREF(seq);
    return (PyObject *)g;
}

/* ------------------------------------------------------------------------------------------ module */

static PyMethodDef module_methods[] = {
    {"parse_trace_block", (PyCFunction)archsim_parse_trace_block, METH_VARARGS, archsim_parse_trace_block_doc},
    {"share_loop", (PyCFunction)share_loop, METH_O,
     "share_loop(channels) -> Loop: one wake-up event and cycle loop for the channels of a memory system"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "archsim.dram._cchannel",
    .m_doc = "Compiled DRAM channel controller and trace-line parser (reference: the Python implementation).",
    .m_size = -1,
    .m_methods = module_methods,
};

#define INTERN(var, text)                                                                                        \
    do {                                                                                                         \
        var = PyUnicode_InternFromString(text);                                                                  \
        if (!var)                                                                                                \
            return NULL;                                                                                         \
    } while (0)

PyMODINIT_FUNC PyInit__cchannel(void)
{
    INTERN(s_now, "now");
    INTERN(s_peek, "peek");
    INTERN(s_schedule, "schedule");
    INTERN(s_callbacks, "callbacks");
    INTERN(s_ok, "_ok");
    INTERN(s_value, "_value");
    INTERN(s_done, "done");
    INTERN(s_t_done, "t_done");
    INTERN(s_t_accept, "t_accept");
    INTERN(s_added_cycle, "added_cycle");
    INTERN(s_addr, "addr");
    INTERN(s_size, "size");
    INTERN(s_is_write, "is_write");
    INTERN(s_ch, "_ch");
    INTERN(s_fb, "_fb");
    INTERN(s_row, "_row");
    INTERN(s_col, "_col");
    INTERN(s_cmd, "_cmd");
    INTERN(s_record_n, "record_n");
    INTERN(s_on_wake, "_on_wake");
    INTERN(s_now_attr, "_now");
    INTERN(s_callbacks_attr, "callbacks");
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    PyObject *tp = PyType_FromSpec(&Channel_spec);
    if (!tp || PyModule_AddObject(m, "Channel", Py_NewRef(tp)) < 0) {
        Py_XDECREF(tp);
        Py_XDECREF(tp);
        Py_DECREF(m);
        return NULL;
    }
    ChannelType = tp; /* kept for the life of the process */
    PyObject *lt = PyType_FromSpec(&Loop_spec);
    if (!lt || PyModule_AddObject(m, "Loop", Py_NewRef(lt)) < 0) {
        Py_XDECREF(lt);
        Py_XDECREF(lt);
        Py_DECREF(m);
        return NULL;
    }
    LoopType = lt;
    if (PyModule_AddIntConstant(m, "NEVER", (long long)NEVER) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
