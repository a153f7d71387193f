/*
 * _cfab.h: the compiled CXL path of the host engine (issue #15), part of the _cchannel translation unit
 * (included by _cchannel.c after _chost.h).
 *
 * What it replaces, for a host engine whose LLC port leads to an AddressRouter: the reads the router sends to a
 * CXL link (archsim/cxl/link.py Link, Wire and its credits), through a switch (archsim/cxl/switch.py: the
 * upstream port's ingress buffer, the forwarding pipeline, the output's virtual output queue, crossbar slot and
 * round-robin or oldest-first grant, the wait for the downstream link's credits), a second link and a Type-3
 * expander (archsim/cxl/expander.py: its controller delay and its port to its DRAM) into the expanders' compiled
 * DRAM, and the three completions on the way back.  The Python components stay the reference; every event they
 * schedule is a record of the heap (_csched.h) at the reference's key, and their counters and histograms are
 * written back to them (fab_sync) before they are read.
 *
 * What it takes: one host, one switch with one upstream port, reads only (the LLC of the host engine holds no
 * dirty line), each downstream port a Link to an Expander whose DRAM is a compiled system of the same loop.
 */

enum { FK_L1_DELIVER = 32, FK_SW_READY, FK_SW_RETRY, FK_L2_DELIVER, FK_EXP_DRAM, FK_EXP_DONE, FK_L2_FIN, FK_SW_FIN,
       FK_L1_FIN, FK_SPACE, FK_SPACE_UP, PK_CMD, PK_L1_DELIVER, PK_SW_READY, PK_HITS, PK_RESULT, PK_SW_RESP,
       PK_SW_FIN, PK_L1_FIN, PK_DONE };

/* CXL message types (archsim/cxl/flit.py MESSAGES) and what they carry (archsim/cxl/link.py LINK_KINDS) */
enum { MT_REQ, MT_RWD, MT_NDR, MT_DRS, NMT };
enum { KD_REQUEST, KD_DATA, KD_COMMAND, KD_PARTIAL, KD_POOLED, NKD };

/* who waits for a credit of a link (the order of the callbacks on its space event) */
enum { W_L1Q = 1, W_FRONT, W_SWO, W_UNIT };

/* one direction of a link (Wire), in units of 1/scale ps */
typedef struct {
    __int128 free_u, p_start_u, p_end_u;
    i64 scale, flit_u, cost[NMT];
    i64 flits, messages, payload, by_type[NMT];
    __int128 units[NKD];
} CWire;

typedef struct {
    CWire m2s, s2m;
    i64 port_ps, phy_ps;
    int credits, used, peak;
    int wl[4], nwl; /* who registered on the pending space event, in order (code | index << 4) */
} CLink;

typedef struct {
    i64 line, addr, t_ready, seq, part, key, t_submit;
    int out, next, pifs, fill;
} FReq;


typedef struct {
    Fifo voq;
    i64 next_slot, requests, bytes_rx, bytes_tx;
    int waiting, pending, exp, face; /* face: the PIFS units' command output inside the switch */
    i64 *qd;
    i64 nqd, capqd;
} FOut;

/* PIFS-Rec (archsim/cxl/pifs.py): a bag, a port unit's share of it, a port unit */
typedef struct {
    PyObject *gr;
    i64 nbytes, nflits, resp, dim, dim_ps, flight, t_ready, t_first, t_hit, t_sw, t_submit, seq;
    i64 p0, np;
    int parts_left, have_data;
} PBag;

typedef struct {
    i64 bag, left, pool_ps, elems, l0, n;
    int unit;
} PPart;

typedef struct {
    i64 busy, adds, lines, inflight;
    Fifo wait; /* its MemoryPort to the port's link: reads waiting for a credit */
} PUnit;

typedef struct {
    i64 base, end, controller_ps, reads, bytes;
    Channel **ch;
    int nch;
    Fifo *pq;
} FExp;

struct Fab {
    Sched *sc;
    Host *h; /* the host engine whose LLC misses cross the fabric (NULL: none) */
    i64 dram_lo, dram_hi; /* the router's range of the host DRAM; every other address goes to link 1 */
    CLink l1;
    CLink *l2; /* per output */
    FOut *out;
    FExp *exp;
    int nout;
    i64 *span_lo, *span_hi;
    int *span_out;
    int nspan;
    i64 fwd_ps, slot_ps, seq;
    int oldest_first;
    /* the upstream port */
    int up_depth, up_used, up_peak, up_waiting;
    i64 up_requests, up_bytes_tx, up_bytes_rx;
    i64 *up_qd;
    i64 up_nqd, up_capqd;
    Fifo up_wait;     /* link 1's port: requests waiting for the ingress buffer */
    Fifo l1_wait;    /* the LLC's port, the router's link queue: lines waiting for a credit */
    FReq *rq;
    int caprq, rfree;
    /* ---- PIFS-Rec units in the switch (npu > 0) */
    int npu, face;    /* port units (one per link output), the command output's index */
    PUnit *pu;
    PBag *pb;
    PPart *pp;
    i64 *pl_addr, *pl_cab; /* the parts' lines and whether the buffer may keep them */
    int npb, cappb, npp, cappp;
    i64 npl, cappl, cappc, outstanding;
    i64 to_ps, from_ps, hit_ps, comb_busy, comb_adds, partials, result_bytes, command_bytes;
    PyObject *buf_tags; /* the on-switch buffer's LRU tags (NULL: none) */
    PendMap pm;       /* its reads in flight and the parts waiting on them */
    i64 buf_merged;
    Fifo front_wait;  /* the host's MemoryPort to link 1: commands waiting for a credit */
    PyObject *pifs_done;
};

static const ArchsimTagsAPI *tags_api; /* the LRU tags' C API (the PIFS buffer), set when one attaches */

/* ------------------------------------------------------------------------------------------ small pieces */

/* Python's -(-a // b) for a >= 0, b > 0 */
static inline __int128 cdiv(__int128 a, __int128 b) { return (a + b - 1) / b; }

/* Wire.send of n messages of type mt (what they carry: kind) arriving at `arrival`; the ps at which the receiver
 * has the last of them */
static i64 wire_send(CWire *w, i64 arrival, int mt, i64 n, i64 payload, int kind)
{
    __int128 a = (__int128)arrival * w->scale;
    if (a >= w->p_end_u) {
        w->flits += (i64)((w->p_end_u - w->p_start_u) / w->flit_u);
        w->p_start_u = w->p_end_u = w->free_u = a;
    }
    __int128 start = a > w->free_u ? a : w->free_u;
    __int128 cost = (__int128)w->cost[mt] * n;
    __int128 end = start + cost;
    w->free_u = end;
    w->p_end_u = w->p_start_u + cdiv(end - w->p_start_u, w->flit_u) * w->flit_u;
    w->messages += n;
    w->by_type[mt] += n;
    w->payload += payload;
    w->units[kind] += cost;
    return (i64)cdiv(w->p_end_u, w->scale);
}

/* register a waiter on a link's space event (Slots.space_event().callbacks.append) */
static inline void link_wait(CLink *l, int code, int index)
{
    if (l->nwl < 4)
        l->wl[l->nwl++] = code | (index << 4);
}

static inline void slot_take(int *used, int *peak)
{
    *used += 1;
    if (*used > *peak)
        *peak = *used;
}

static int push_qd(i64 **v, i64 *n, i64 *cap, i64 x)
{
    if (*n >= *cap && grow64(v, cap, *n + 1) < 0)
        return -1;
    (*v)[(*n)++] = x;
    return 0;
}

/* ------------------------------------------------------------------------------------------ the path down */

/* Link.submit of the LLC's read of `line` into link 1 (a credit is free: checked) */
static int fab_l1_submit(Fab *f, u64 line, i64 now)
{
    Host *h = f->h;
    int ri = fl_take((void **)&f->rq, &f->caprq, &f->rfree, sizeof(FReq), offsetof(FReq, next));
    if (ri < 0)
        return -1;
    FReq *r = &f->rq[ri];
    r->line = (i64)line;
    r->addr = (i64)(line << h->line_shift);
    r->pifs = 0;
    slot_take(&f->l1.used, &f->l1.peak);
    i64 at = wire_send(&f->l1.m2s, now + f->l1.port_ps, MT_REQ, 1, 0, KD_REQUEST);
    h->sent += 1;
    return hpush(f->sc, at + f->l1.phy_ps + f->l1.port_ps, FK_L1_DELIVER, 0, ri, 0);
}

/* MemoryPort.send of the LLC's miss of `line` to the router's link queue */
static int fab_send(Fab *f, u64 line, i64 now)
{
    Fifo *q = &f->l1_wait;
    if (f->l1.used < f->l1.credits && q->n == 0)
        return fab_l1_submit(f, line, now);
    if (fifo_push(q, line) < 0)
        return -1;
    f->h->stalled += 1;
    if (q->n == 1)
        link_wait(&f->l1, W_L1Q, 0);
    return 0;
}

static int fab_route(Fab *f, i64 addr)
{
    int lo = 0, hi = f->nspan - 1, i = -1;
    while (lo <= hi) { /* the last span whose base is at or below addr */
        int mid = (lo + hi) / 2;
        if (f->span_lo[mid] <= addr) {
            i = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (i < 0 || addr >= f->span_hi[i]) {
        PyErr_Format(PyExc_ValueError, "address 0x%llx is in no downstream port's range", (unsigned long long)addr);
        return -1;
    }
    return f->span_out[i];
}

/* Switch._ingress of read `ri` at the upstream port (the ingress buffer has room: checked) */
static int fab_ingress(Fab *f, int ri, i64 now)
{
    FReq *r = &f->rq[ri];
    int o = fab_route(f, r->addr);
    if (o < 0)
        return -1;
    r->out = o;
    slot_take(&f->up_used, &f->up_peak);
    f->up_requests += 1;
    f->seq += 1;
    r->seq = f->seq;
    return hpush(f->sc, now + f->fwd_ps, FK_SW_READY, 0, ri, 0);
}

/* the upstream port's ingress buffer gives a place back (UpstreamPort._release) */
static int fab_up_give(Fab *f, i64 now)
{
    f->up_used -= 1;
    if (f->up_waiting) {
        f->up_waiting = 0;
        return hpush(f->sc, now, FK_SPACE_UP, 0, 0, 0);
    }
    return 0;
}

/* Slots.give of a link's credit: its space event, with the waiters registered so far, fires now */
static int fab_link_give(Fab *f, CLink *l, i64 now)
{
    l->used -= 1;
    if (l->nwl) {
        i64 packed = 0;
        for (int i = l->nwl - 1; i >= 0; i--)
            packed = (packed << 16) | (i64)l->wl[i];
        int n = l->nwl;
        l->nwl = 0;
        return hpush(f->sc, now, FK_SPACE, n, packed, 0);
    }
    return 0;
}

static int pifs_dispatch(Fab *f, int bi, i64 now);

/* Switch._arbitrate of output o */
static int fab_arbitrate(Fab *f, int o, i64 now)
{
    FOut *out = &f->out[o];
    CLink *l2 = &f->l2[o];
    while (out->waiting) {
        if (now < out->next_slot) {
            out->pending = 1;
            return hpush(f->sc, out->next_slot, FK_SW_RETRY, o, 0, 0);
        }
        int ri = out->voq.v[out->voq.head]; /* one input: its head wins either policy */
        if (!out->face && l2->used >= l2->credits) {
            out->pending = 1;
            link_wait(l2, W_SWO, o);
            return 0;
        }
        fifo_pop(&out->voq);
        out->waiting -= 1;
        out->next_slot = now + f->slot_ps;
        if (fab_up_give(f, now) < 0)
            return -1;
        i64 delay = now - (ri >= 0 ? f->rq[ri].t_ready : f->pb[-ri - 1].t_sw);
        if (push_qd(&f->up_qd, &f->up_nqd, &f->up_capqd, delay) < 0 ||
            push_qd(&out->qd, &out->nqd, &out->capqd, delay) < 0)
            return -1;
        out->requests += 1;
        if (out->face) { /* a bag's command reaches the units: _CommandFace.submit, PIFS.dispatch */
            int bi = -ri - 1;
            out->bytes_tx += f->pb[bi].nbytes;
            if (pifs_dispatch(f, bi, now) < 0)
                return -1;
            continue;
        }
        /* the downstream link's submit */
        slot_take(&l2->used, &l2->peak);
        i64 at = wire_send(&l2->m2s, now + l2->port_ps, MT_REQ, 1, 0, KD_REQUEST);
        if (hpush(f->sc, at + l2->phy_ps + l2->port_ps, FK_L2_DELIVER, o, ri, 0) < 0)
            return -1;
    }
    out->pending = 0;
    return 0;
}

static int fab_exp_wait(Fab *f, FExp *e, int k)
{
    return engine_wait_space(e->ch[k], 3, (int)(e - f->exp), k);
}

static int fab_exp_submit(Fab *f, FExp *e, Channel *s, int ri, i64 now)
{
    i64 c;
    if (accept_cycle(s, now, &c) < 0 || engine_read(s, (u64)(f->rq[ri].addr - e->base), c, 3, ri, -1) < 0)
        return -1;
    return wake(s, c);
}

/* the expander's MemoryPort.send of read `ri` to its DRAM */
static int fab_exp_send(Fab *f, FExp *e, int ri, i64 now)
{
    int ch, fb, row, col;
    decode(e->ch[0], (u64)(f->rq[ri].addr - e->base), &ch, &fb, &row, &col);
    if (ch < 0 || ch >= e->nch) {
        PyErr_Format(PyExc_ValueError, "address 0x%llx maps to channel %d of %d",
                     (unsigned long long)(f->rq[ri].addr - e->base), ch, e->nch);
        return -1;
    }
    Channel *s = e->ch[ch];
    Fifo *q = &e->pq[ch];
    if (can_accept_c(s, 0) && q->n == 0)
        return fab_exp_submit(f, e, s, ri, now);
    if (fifo_push(q, ri) < 0)
        return -1;
    if (q->n == 1)
        return fab_exp_wait(f, e, ch);
    return 0;
}

/* ------------------------------------------------------------------------------------------ actions */

/* ------------------------------------------------------------------------------------------ PIFS-Rec units */

/* the downstream link's submit of a unit's read `ri` (a credit is free: checked) */
static int pifs_l2_submit(Fab *f, int ri, i64 now)
{
    FReq *r = &f->rq[ri];
    CLink *l2 = &f->l2[r->out];
    r->t_submit = now;
    slot_take(&l2->used, &l2->peak);
    i64 at = wire_send(&l2->m2s, now + l2->port_ps, MT_REQ, 1, 0, KD_REQUEST);
    return hpush(f->sc, at + l2->phy_ps + l2->port_ps, FK_L2_DELIVER, r->out, ri, 0);
}

/* a unit's MemoryPort.send of one 64 B read of `addr` for part `pi` (fill: into the buffer, key `key`) */
static int pifs_send(Fab *f, int o, i64 pi, i64 addr, int fill, i64 key, i64 now)
{
    int ri = fl_take((void **)&f->rq, &f->caprq, &f->rfree, sizeof(FReq), offsetof(FReq, next));
    if (ri < 0)
        return -1;
    FReq *r = &f->rq[ri];
    r->addr = addr;
    r->out = o;
    r->pifs = 1;
    r->part = pi;
    r->fill = fill;
    r->key = key;
    PUnit *u = &f->pu[o];
    CLink *l2 = &f->l2[o];
    if (l2->used < l2->credits && u->wait.n == 0)
        return pifs_l2_submit(f, ri, now);
    if (fifo_push(&u->wait, ri) < 0)
        return -1;
    if (u->wait.n == 1)
        link_wait(l2, W_UNIT, o);
    return 0;
}

static int pifs_partial_ready(Fab *f, i64 bi, i64 t_ready)
{
    PBag *b = &f->pb[bi];
    i64 t = (f->comb_busy > t_ready ? f->comb_busy : t_ready) + b->dim_ps; /* the combiner adds it */
    f->comb_busy = t;
    f->comb_adds += b->dim;
    f->partials += 1;
    if (t > b->t_ready)
        b->t_ready = t;
    if (--b->parts_left == 0)
        return hpush(f->sc, b->t_ready, PK_RESULT, 0, bi, 0);
    return 0;
}

/* _PortUnit.pool */
static int pifs_pool(Fab *f, i64 pi, i64 now, i64 n)
{
    PPart *p = &f->pp[pi];
    PUnit *u = &f->pu[p->unit];
    i64 t = (u->busy > now ? u->busy : now) + n * p->pool_ps;
    u->busy = t;
    u->adds += n * p->elems;
    p->left -= n;
    if (p->left == 0)
        return pifs_partial_ready(f, p->bag, t);
    return 0;
}

/* _PortUnit.read of part `pi` */
static int pifs_read(Fab *f, i64 pi, i64 now)
{
    PPart *p = &f->pp[pi];
    PBag *b = &f->pb[p->bag];
    int o = p->unit;
    PUnit *u = &f->pu[o];
    i64 hits = 0, shared = 0;
    for (i64 k = 0; k < p->n; k++) {
        i64 a = f->pl_addr[p->l0 + k];
        if (f->buf_tags && f->pl_cab[p->l0 + k]) {
            if (tags_api->lookup(f->buf_tags, (u64)a >> 6, 0)) {
                hits++;
                continue;
            }
            int rc = pm_join(&f->pm, 0, (u64)a, pi);
            if (rc < 0)
                return -1;
            if (rc == 1) { /* being read for an earlier bag: share that read */
                f->buf_merged += 1;
                shared++;
                continue;
            }
            u->lines += 1;
            u->inflight += 1;
            if (pifs_send(f, o, pi, a, 1, a, now) < 0)
                return -1;
            continue;
        }
        u->lines += 1;
        u->inflight += 1;
        if (pifs_send(f, o, pi, a, 0, a, now) < 0)
            return -1;
    }
    if (hits || shared) { /* _Part.served */
        i64 t = now - b->flight;
        if (t < b->t_hit)
            b->t_hit = t;
    }
    if (hits)
        return hpush(f->sc, now + f->hit_ps, PK_HITS, 0, pi, hits);
    return 0;
}

/* PIFS.dispatch: the command of bag `bi` reached the units */
static int pifs_dispatch(Fab *f, int bi, i64 now)
{
    PBag *b = &f->pb[bi];
    if (!b->have_data) {
        PyErr_SetString(PyExc_RuntimeError, "PIFS engine: a command before its bag's data");
        return -1;
    }
    for (i64 j = 0; j < b->np; j++)
        if (pifs_read(f, b->p0 + j, now) < 0)
            return -1;
    return 0;
}

/* the host's MemoryPort.send of bag bi's command into link 1 (a credit is free: checked): a message */
static int pifs_l1_submit(Fab *f, int bi, i64 now)
{
    PBag *b = &f->pb[bi];
    slot_take(&f->l1.used, &f->l1.peak);
    i64 at = wire_send(&f->l1.m2s, now + f->l1.port_ps, MT_RWD, b->nflits, b->nbytes, KD_COMMAND);
    return hpush(f->sc, at + f->l1.phy_ps + f->l1.port_ps, PK_L1_DELIVER, 0, bi, 0);
}


static int pifs_ingress(Fab *f, int bi, i64 now);
static int fab_arbitrate(Fab *f, int o, i64 now);

/* one waiter's callback on a link's space event (MemoryPort._drain, Switch._retry_out) */
static int fab_space_waiter(Fab *f, int w, i64 now)
{
    int code = w & 15, o = w >> 4;
    switch (code) {
    case W_L1Q: { /* the LLC port's drain of the router's link queue */
        Fifo *q = &f->l1_wait;
        while (q->n > 0) {
            if (f->l1.used >= f->l1.credits) {
                link_wait(&f->l1, W_L1Q, 0);
                return 0;
            }
            if (fab_l1_submit(f, fifo_pop(q), now) < 0)
                return -1;
        }
        return 0;
    }
    case W_FRONT: { /* the host's port to link 1: PIFS commands */
        Fifo *q = &f->front_wait;
        while (q->n > 0) {
            if (f->l1.used >= f->l1.credits) {
                link_wait(&f->l1, W_FRONT, 0);
                return 0;
            }
            if (pifs_l1_submit(f, fifo_pop(q), now) < 0)
                return -1;
        }
        return 0;
    }
    case W_SWO:
        f->out[o].pending = 0;
        return fab_arbitrate(f, o, now);
    case W_UNIT: { /* a unit's port to its link */
        Fifo *q = &f->pu[o].wait;
        while (q->n > 0) {
            if (f->l2[o].used >= f->l2[o].credits) {
                link_wait(&f->l2[o], W_UNIT, o);
                return 0;
            }
            if (pifs_l2_submit(f, fifo_pop(q), now) < 0)
                return -1;
        }
        return 0;
    }
    default:
        PyErr_SetString(PyExc_RuntimeError, "fabric engine: an unknown waiter");
        return -1;
    }
}

/* Switch._ingress of bag bi's command at the upstream port (the ingress buffer has room: checked) */
static int pifs_ingress(Fab *f, int bi, i64 now)
{
    slot_take(&f->up_used, &f->up_peak);
    f->up_requests += 1;
    f->up_bytes_rx += f->pb[bi].nbytes; /* a message is write data */
    f->seq += 1;
    f->pb[bi].seq = f->seq;
    return hpush(f->sc, now + f->fwd_ps, PK_SW_READY, 0, bi, 0);
}

static int fab_act(Fab *f, const HRec *rec)
{
    Host *h = f->h;
    i64 now = rec->t;
    int ri = (int)rec->b;
    switch (rec->kind) {
    case FK_L1_DELIVER: /* Link._deliver: the MemoryPort to the switch's upstream port */
        if (f->up_used < f->up_depth && f->up_wait.n == 0)
            return fab_ingress(f, ri, now);
        if (fifo_push(&f->up_wait, ri) < 0)
            return -1;
        if (f->up_wait.n == 1)
            f->up_waiting = 1;
        return 0;
    case FK_SW_READY: { /* Switch._ready */
        FReq *r = &f->rq[ri];
        r->t_ready = now;
        FOut *out = &f->out[r->out];
        if (fifo_push(&out->voq, ri) < 0)
            return -1;
        out->waiting += 1;
        if (!out->pending)
            return fab_arbitrate(f, r->out, now);
        return 0;
    }
    case FK_SW_RETRY: /* Switch._retry */
        f->out[rec->a].pending = 0;
        return fab_arbitrate(f, rec->a, now);
    case FK_L2_DELIVER: { /* Link._deliver into the expander: Expander.submit */
        FExp *e = &f->exp[f->out[rec->a].exp];
        FReq *r = &f->rq[ri];
        if (r->addr < e->base || r->addr >= e->end) {
            PyErr_Format(PyExc_ValueError, "address 0x%llx is outside the expander's window",
                         (unsigned long long)r->addr);
            return -1;
        }
        e->reads += 1;
        e->bytes += 64;
        if (e->controller_ps)
            return hpush(f->sc, now + e->controller_ps, FK_EXP_DRAM, rec->a, ri, 0);
        return fab_exp_send(f, e, ri, now);
    }
    case FK_EXP_DRAM: /* Expander._to_dram */
        return fab_exp_send(f, &f->exp[f->out[rec->a].exp], ri, now);
    case FK_EXP_DONE: { /* the DRAM is done: the downstream link's _respond */
        int o = f->rq[ri].out;
        CLink *l2 = &f->l2[o];
        i64 at = wire_send(&l2->s2m, now + l2->port_ps, MT_DRS, 1, 64, KD_DATA);
        return hpush(f->sc, at + l2->phy_ps + l2->port_ps, FK_L2_FIN, o, ri, 0);
    }
    case FK_L2_FIN: { /* the downstream link's response: its _release, then Switch._response or the unit's */
        int o = rec->a;
        if (fab_link_give(f, &f->l2[o], now) < 0)
            return -1;
        FReq *r = &f->rq[ri];
        if (!r->pifs) {
            f->out[o].bytes_rx += 64;
            f->up_bytes_tx += 64;
            return hpush(f->sc, now + f->fwd_ps, FK_SW_FIN, 0, ri, 0);
        }
        /* _PortUnit._on_data / _on_fill */
        FReq q = *r;
        r->next = f->rfree;
        r->pifs = 0;
        f->rfree = ri;
        PUnit *u = &f->pu[o];
        u->inflight -= 1;
        PBag *b = &f->pb[f->pp[q.part].bag];
        i64 t = q.t_submit - b->flight; /* _Part.issued */
        if (t < b->t_first)
            b->t_first = t;
        if (!q.fill)
            return pifs_pool(f, q.part, now, 1);
        u64 vl;
        int vd;
        if (tags_api->fill(f->buf_tags, (u64)q.key >> 6, 0, &vl, &vd) < 0)
            return -1;
        int wi = pm_take(&f->pm, 0, (u64)q.key);
        if (wi == -2) {
            PyErr_SetString(PyExc_RuntimeError, "PIFS engine: a fill without a read in flight");
            return -1;
        }
        if (pifs_pool(f, q.part, now, 1) < 0)
            return -1;
        while (wi >= 0) {
            i64 part;
            wi = pm_next(&f->pm, wi, &part);
            if (pifs_pool(f, part, now, 1) < 0)
                return -1;
        }
        return 0;
    }
    case FK_SW_FIN: { /* the switch's response reaches link 1: Link._respond */
        i64 at = wire_send(&f->l1.s2m, now + f->l1.port_ps, MT_DRS, 1, 64, KD_DATA);
        return hpush(f->sc, at + f->l1.phy_ps + f->l1.port_ps, FK_L1_FIN, 0, ri, 0);
    }
    case FK_L1_FIN: { /* link 1's response: its _release, then the LLC's _on_fill_data */
        i64 line = f->rq[ri].line;
        f->rq[ri].next = f->rfree;
        f->rfree = ri;
        if (fab_link_give(f, &f->l1, now) < 0)
            return -1;
        return hpush(f->sc, now + h->from_next_ps, HK_FILL, 0, line, 0);
    }
    case FK_SPACE: /* a link's space event: its waiters' callbacks, in the order they registered */
        for (int i = 0; i < rec->a; i++)
            if (fab_space_waiter(f, (int)((rec->b >> (16 * i)) & 0xFFFF), now) < 0)
                return -1;
        return 0;
    case FK_SPACE_UP: { /* link 1's port's _drain into the upstream port */
        Fifo *q = &f->up_wait;
        while (q->n > 0) {
            if (f->up_used >= f->up_depth) {
                f->up_waiting = 1;
                return 0;
            }
            int x = fifo_pop(q);
            if ((x >= 0 ? fab_ingress(f, x, now) : pifs_ingress(f, -x - 1, now)) < 0)
                return -1;
        }
        return 0;
    }
    case PK_CMD: { /* PIFS._command: the bag's command leaves the host's root port */
        int bi = (int)rec->b;
        f->command_bytes += f->pb[bi].nbytes;
        if (f->l1.used < f->l1.credits && f->front_wait.n == 0)
            return pifs_l1_submit(f, bi, now);
        if (fifo_push(&f->front_wait, bi) < 0)
            return -1;
        if (f->front_wait.n == 1)
            link_wait(&f->l1, W_FRONT, 0);
        return 0;
    }
    case PK_L1_DELIVER: { /* link 1's _deliver of a command: to the upstream port, then its credit returns */
        int bi = (int)rec->b;
        int rc;
        if (f->up_used < f->up_depth && f->up_wait.n == 0) {
            rc = pifs_ingress(f, bi, now);
        } else {
            rc = fifo_push(&f->up_wait, -bi - 1);
            if (rc == 0 && f->up_wait.n == 1)
                f->up_waiting = 1;
        }
        if (rc < 0)
            return -1;
        return fab_link_give(f, &f->l1, now);
    }
    case PK_SW_READY: { /* Switch._ready of a command */
        int bi = (int)rec->b;
        f->pb[bi].t_sw = now;
        FOut *out = &f->out[f->face];
        if (fifo_push(&out->voq, -bi - 1) < 0)
            return -1;
        out->waiting += 1;
        if (!out->pending)
            return fab_arbitrate(f, f->face, now);
        return 0;
    }
    case PK_HITS: /* _PortUnit._on_hits */
        return pifs_pool(f, rec->b, now, rec->c);
    case PK_RESULT: { /* PIFS._result: the pooled vector answers the command */
        PBag *b = &f->pb[rec->b];
        f->result_bytes += b->dim * 4;
        return hpush(f->sc, now, PK_SW_RESP, 0, rec->b, 0);
    }
    case PK_SW_RESP: { /* Switch._response of a command */
        PBag *b = &f->pb[rec->b];
        f->out[f->face].bytes_rx += b->resp;
        f->up_bytes_tx += b->resp;
        return hpush(f->sc, now + f->fwd_ps, PK_SW_FIN, 0, rec->b, 0);
    }
    case PK_SW_FIN: { /* link 1's _respond of a command: the pooled vector up, no credit held */
        PBag *b = &f->pb[rec->b];
        i64 at = wire_send(&f->l1.s2m, now + f->l1.port_ps, MT_DRS, (b->resp + 63) / 64, b->resp, KD_POOLED);
        return hpush(f->sc, at + f->l1.phy_ps + f->l1.port_ps, PK_L1_FIN, 0, rec->b, 0);
    }
    case PK_L1_FIN: /* PIFS._pooled_back */
        return hpush(f->sc, now + f->from_ps, PK_DONE, 0, rec->b, 0);
    case PK_DONE: { /* PIFS._done */
        PBag *b = &f->pb[rec->b];
        i64 t = b->t_first < ((i64)1 << 62) ? b->t_first : b->t_hit; /* PIFS._stamp at the result */
        i64 t_issue = t > b->t_submit ? t : b->t_submit;
        PyObject *gr = b->gr;
        b->gr = NULL;
        f->outstanding -= 1;
        PyObject *r = PyObject_CallFunction(f->pifs_done, "OL", gr, (long long)t_issue);
        Py_DECREF(gr);
        if (!r)
            return -1;
        Py_DECREF(r);
        f->sc->sh_valid = 0;
        return 0;
    }
    default:
        PyErr_SetString(PyExc_RuntimeError, "fabric engine: an unknown record");
        return -1;
    }
}

/* the expanders' DRAM completed read `ri` (from tick) */
static int fab_dram_done(Loop *g, i64 ri, i64 now)
{
    return hpush(g->sched, now, FK_EXP_DONE, 0, ri, 0);
}

/* ------------------------------------------------------------------------------------------ Python face */

/* the expander's MemoryPort._drain for its channel k (the callback of a space event) */
static int fab_drain(Fab *f, int e, int k, i64 now)
{
    if (e < 0 || e >= f->nout || k < 0 || k >= f->exp[e].nch) {
        PyErr_SetString(PyExc_ValueError, "fab_drain: no such expander channel");
        return -1;
    }
    FExp *x = &f->exp[e];
    Fifo *q = &x->pq[k];
    Channel *s = x->ch[k];
    while (q->n > 0) {
        if (!can_accept_c(s, 0))
            return fab_exp_wait(f, x, k);
        if (fab_exp_submit(f, x, s, (int)fifo_pop(q), now) < 0)
            return -1;
    }
    return 0;
}

static void fab_free(Fab *f)
{
    if (!f)
        return;
    if (f->exp) {
        for (int i = 0; i < f->nout; i++) {
            if (f->exp[i].pq)
                for (int k = 0; k < f->exp[i].nch; k++)
                    PyMem_Free(f->exp[i].pq[k].v);
            PyMem_Free(f->exp[i].pq);
            PyMem_Free(f->exp[i].ch);
        }
    }
    if (f->out)
        for (int i = 0; i < f->nout; i++) {
            PyMem_Free(f->out[i].voq.v);
            PyMem_Free(f->out[i].qd);
        }
    PyMem_Free(f->exp);
    PyMem_Free(f->out);
    PyMem_Free(f->l2);
    PyMem_Free(f->span_lo);
    PyMem_Free(f->span_hi);
    PyMem_Free(f->span_out);
    PyMem_Free(f->up_qd);
    PyMem_Free(f->up_wait.v);
    PyMem_Free(f->l1_wait.v);
    PyMem_Free(f->rq);
    if (f->pu)
        for (int i = 0; i < f->npu; i++)
            PyMem_Free(f->pu[i].wait.v);
    PyMem_Free(f->pu);
    for (int i = 0; i < f->npb; i++)
        Py_XDECREF(f->pb[i].gr);
    PyMem_Free(f->pb);
    PyMem_Free(f->pp);
    PyMem_Free(f->pl_addr);
    PyMem_Free(f->pl_cab);
    pm_free(&f->pm);
    PyMem_Free(f->front_wait.v);
    Py_XDECREF(f->buf_tags);
    Py_XDECREF(f->pifs_done);
    PyMem_Free(f);
}

static int fab_traverse(Fab *f, visitproc visit, void *arg)
{
    if (!f)
        return 0;
    for (int i = 0; i < f->npb; i++)
        Py_VISIT(f->pb[i].gr);
    Py_VISIT(f->buf_tags);
    Py_VISIT(f->pifs_done);
    return 0;
}

/* link: (port_ps, phy_ps, credits, scale, flit_u, (cost of each message type)) */
static int parse_link(PyObject *t, CLink *l)
{
    long long port, phy, scale, flit, c[NMT];
    int credits;
    if (!PyArg_ParseTuple(t, "LLiLL(LLLL)", &port, &phy, &credits, &scale, &flit, &c[0], &c[1], &c[2], &c[3]))
        return -1;
    memset(l, 0, sizeof(*l));
    l->port_ps = port;
    l->phy_ps = phy;
    l->credits = credits;
    for (int d = 0; d < 2; d++) {
        CWire *w = d ? &l->s2m : &l->m2s;
        w->scale = scale;
        w->flit_u = flit;
        for (int m = 0; m < NMT; m++)
            w->cost[m] = c[m];
    }
    if (scale < 1 || flit < 1 || credits < 1) {
        PyErr_SetString(PyExc_ValueError, "attach_fab: bad link");
        return -1;
    }
    return 0;
}

/* attach_fab(dram_lo, dram_hi, link1, fwd_ps, slot_ps, up_depth, oldest_first, spans, outputs, expanders, queue,
 * eid, heappush, proxy_cls): spans [(lo, hi, output)]; outputs [(link, expander index)], None for the PIFS units'
 * command output; expanders [(base, end, controller_ps, channels)], None for that output */
static PyObject *Loop_attach_fab(Loop *g, PyObject *args)
{
    long long dlo, dhi, fwd, slot;
    PyObject *l1, *spans, *outs, *exps, *queue, *eid_it, *heappush, *proxy_cls;
    int depth, oldest;
    if (!PyArg_ParseTuple(args, "LLOLLipO!O!O!OOOO", &dlo, &dhi, &l1, &fwd, &slot, &depth, &oldest, &PyList_Type,
                          &spans, &PyList_Type, &outs, &PyList_Type, &exps, &queue, &eid_it, &heappush, &proxy_cls))
        return NULL;
    if (g->fab || g->src_state != SRC_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "the loop already has a fabric engine or a source");
        return NULL;
    }
    Sched *sc = sched_get(g, queue, eid_it, heappush, proxy_cls);
    if (!sc)
        return NULL;
    int nout = (int)PyList_GET_SIZE(outs), nspan = (int)PyList_GET_SIZE(spans);
    if (nout < 1 || PyList_GET_SIZE(exps) != nout || nspan < 1 || depth < 1) {
        PyErr_SetString(PyExc_ValueError, "attach_fab: bad arguments");
        return NULL;
    }
    Fab *f = PyMem_Calloc(1, sizeof(Fab));
    if (!f)
        return PyErr_NoMemory();
    f->sc = sc;
    f->h = g->host;
    f->rfree = -1;
    f->pm.wfree = -1;
    f->face = -1;
    f->dram_lo = dlo;
    f->dram_hi = dhi;
    f->fwd_ps = fwd;
    f->slot_ps = slot;
    f->up_depth = depth;
    f->oldest_first = oldest;
    f->nout = nout;
    f->nspan = nspan;
    f->l2 = PyMem_Calloc((size_t)nout, sizeof(CLink));
    f->out = PyMem_Calloc((size_t)nout, sizeof(FOut));
    f->exp = PyMem_Calloc((size_t)nout, sizeof(FExp));
    f->span_lo = PyMem_Calloc((size_t)nspan, sizeof(i64));
    f->span_hi = PyMem_Calloc((size_t)nspan, sizeof(i64));
    f->span_out = PyMem_Calloc((size_t)nspan, sizeof(int));
    if (!f->l2 || !f->out || !f->exp || !f->span_lo || !f->span_hi || !f->span_out) {
        fab_free(f);
        return PyErr_NoMemory();
    }
    if (parse_link(l1, &f->l1) < 0)
        goto fail;
    for (int i = 0; i < nspan; i++) {
        long long lo, hi;
        int o;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(spans, i), "LLi", &lo, &hi, &o))
            goto fail;
        if (o < 0 || o >= nout) {
            PyErr_SetString(PyExc_ValueError, "attach_fab: a span to no output");
            goto fail;
        }
        f->span_lo[i] = lo;
        f->span_hi[i] = hi;
        f->span_out[i] = o;
    }
    for (int i = 0; i < nout; i++) {
        PyObject *ot = PyList_GET_ITEM(outs, i);
        f->out[i].exp = i;
        if (ot == Py_None) { /* the units' command output inside the switch */
            if (f->face >= 0) {
                PyErr_SetString(PyExc_ValueError, "attach_fab: two command outputs");
                goto fail;
            }
            f->face = i;
            f->out[i].face = 1;
            continue;
        }
        PyObject *lt;
        int e;
        if (!PyArg_ParseTuple(ot, "Oi", &lt, &e) || parse_link(lt, &f->l2[i]) < 0)
            goto fail;
        long long base, end, ctl;
        PyObject *chans;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(exps, i), "LLLO!", &base, &end, &ctl, &PyTuple_Type, &chans))
            goto fail;
        FExp *x = &f->exp[i];
        x->base = base;
        x->end = end;
        x->controller_ps = ctl;
        x->nch = (int)PyTuple_GET_SIZE(chans);
        x->ch = PyMem_Calloc((size_t)(x->nch > 0 ? x->nch : 1), sizeof(Channel *));
        x->pq = PyMem_Calloc((size_t)(x->nch > 0 ? x->nch : 1), sizeof(Fifo));
        if (!x->ch || !x->pq) {
            PyErr_NoMemory();
            goto fail;
        }
        if (x->nch < 1) {
            PyErr_SetString(PyExc_ValueError, "attach_fab: bad expander");
            goto fail;
        }
        for (int k = 0; k < x->nch; k++) {
            PyObject *c = PyTuple_GET_ITEM(chans, k);
            int found = 0;
            for (int j = 0; j < g->n; j++)
                found |= (PyObject *)g->ch[j] == c;
            if (!found) {
                PyErr_SetString(PyExc_ValueError, "attach_fab: an expander channel of another loop");
                goto fail;
            }
            x->ch[k] = (Channel *)c;
        }
    }
    g->fab = f;
    if (g->host)
        g->host->fab = f;
    Py_RETURN_NONE;
fail:
    fab_free(f);
    return NULL;
}

/* attach_pifs(buffer_tags or None, to_ps, from_ps, hit_ps, done): PIFS-Rec units at the fabric's link outputs,
 * commands at its command output; done(gr, t_issue) completes a bag */
static PyObject *Loop_attach_pifs(Loop *g, PyObject *args)
{
    PyObject *tags, *done;
    long long to, from, hit;
    if (!PyArg_ParseTuple(args, "OLLLO", &tags, &to, &from, &hit, &done))
        return NULL;
    Fab *f = g->fab;
    if (!f || f->face < 0 || f->npu) {
        PyErr_SetString(PyExc_RuntimeError, "attach_pifs needs a fabric with a command output, once");
        return NULL;
    }
    if (tags != Py_None) {
        const ArchsimTagsAPI *api = PyCapsule_Import(ARCHSIM_TAGS_CAPSULE, 0);
        if (!api)
            return NULL;
        if ((PyObject *)Py_TYPE(tags) != (PyObject *)api->type) {
            PyErr_SetString(PyExc_TypeError, "attach_pifs: the buffer's tags must be an LRUTags");
            return NULL;
        }
        tags_api = api;
        f->buf_tags = Py_NewRef(tags);
    }
    f->pu = PyMem_Calloc((size_t)f->nout, sizeof(PUnit));
    if (!f->pu)
        return PyErr_NoMemory();
    f->npu = f->nout;
    f->to_ps = to;
    f->from_ps = from;
    f->hit_ps = hit;
    f->pifs_done = Py_NewRef(done);
    Py_RETURN_NONE;
}

/* pifs_submit(gr, t_submit): PIFS.submit of a bag: its command leaves after the host's path (the data comes
 * with pifs_data before it is dispatched); the bag's index */
static PyObject *Loop_pifs_submit(Loop *g, PyObject *args)
{
    PyObject *gr;
    long long t_submit;
    Fab *f = g->fab;
    if (!f || !f->npu) {
        PyErr_SetString(PyExc_RuntimeError, "no PIFS engine attached");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OL", &gr, &t_submit))
        return NULL;
    if (f->outstanding == 0) { /* every earlier bag is done: start the arrays again */
        f->npb = f->npp = 0;
        f->npl = 0;
    }
    if (f->npb >= f->cappb && grow((void **)&f->pb, &f->cappb, sizeof(PBag), f->npb + 1) < 0)
        return NULL;
    int bi = f->npb++;
    PBag *b = &f->pb[bi];
    memset(b, 0, sizeof(*b));
    b->gr = Py_NewRef(gr);
    b->t_submit = t_submit;
    b->t_first = b->t_hit = (i64)1 << 62;
    f->outstanding += 1;
    if (hpush(f->sc, t_submit + f->to_ps, PK_CMD, 0, bi, 0) < 0)
        return NULL;
    if (ensure_proxy(g, f->sc) < 0)
        return NULL;
    return PyLong_FromLong(bi);
}

/* pifs_data(first_bag, bag rows (nbytes, nflits, resp, dim, dim_ps, flight), parts (bag, unit, lines, pool_ps,
 * elems), line addresses, line cacheable flags): the dispatch of bags first_bag, ... as int64 arrays (parts and
 * lines in order, bag indices relative to first_bag) */
static PyObject *Loop_pifs_data(Loop *g, PyObject *args)
{
    Fab *f = g->fab;
    int b0;
    PyObject *a[4];
    if (!f || !f->npu) {
        PyErr_SetString(PyExc_RuntimeError, "no PIFS engine attached");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "iOOOO", &b0, &a[0], &a[1], &a[2], &a[3]))
        return NULL;
    Py_buffer buf[4];
    int got = 0;
    for (int i = 0; i < 4; i++) {
        if (PyObject_GetBuffer(a[i], &buf[i], PyBUF_C_CONTIGUOUS) < 0)
            goto fail;
        got++;
    }
    const i64 *bag = buf[0].buf, *part = buf[1].buf, *la = buf[2].buf, *lc = buf[3].buf;
    i64 nb = buf[0].len / (6 * (Py_ssize_t)sizeof(i64)), np_ = buf[1].len / (5 * (Py_ssize_t)sizeof(i64));
    i64 nl = buf[2].len / (Py_ssize_t)sizeof(i64);
    if (b0 < 0 || b0 + nb > f->npb || buf[3].len != buf[2].len) {
        PyErr_SetString(PyExc_ValueError, "pifs_data: bags out of range");
        goto fail;
    }
    if (grow((void **)&f->pp, &f->cappp, sizeof(PPart), (int)(f->npp + np_)) < 0 ||
        grow64(&f->pl_addr, &f->cappl, f->npl + nl) < 0 || grow64(&f->pl_cab, &f->cappc, f->npl + nl) < 0)
        goto fail;
    i64 l0 = f->npl, p0 = f->npp;
    memcpy(f->pl_addr + l0, la, (size_t)nl * sizeof(i64));
    memcpy(f->pl_cab + l0, lc, (size_t)nl * sizeof(i64));
    f->npl += nl;
    i64 line = l0;
    for (i64 j = 0; j < np_; j++) {
        PPart *p = &f->pp[p0 + j];
        const i64 *r = part + 5 * j;
        p->bag = b0 + r[0];
        p->unit = (int)r[1];
        p->left = p->n = r[2];
        p->pool_ps = r[3];
        p->elems = r[4];
        p->l0 = line;
        line += r[2];
        if (p->unit < 0 || p->unit >= f->npu || p->unit == f->face || p->bag >= f->npb) {
            PyErr_SetString(PyExc_ValueError, "pifs_data: a part of no unit");
            goto fail;
        }
    }
    f->npp += (int)np_;
    i64 pj = p0;
    for (i64 i = 0; i < nb; i++) {
        PBag *b = &f->pb[b0 + i];
        const i64 *r = bag + 6 * i;
        b->nbytes = r[0];
        b->nflits = r[1];
        b->resp = r[2];
        b->dim = r[3];
        b->dim_ps = r[4];
        b->flight = r[5];
        b->p0 = pj;
        b->np = 0;
        while (pj < f->npp && f->pp[pj].bag == b0 + i) {
            b->np++;
            pj++;
        }
        b->parts_left = (int)b->np;
        b->have_data = 1;
    }
    for (int i = 0; i < got; i++)
        PyBuffer_Release(&buf[i]);
    Py_RETURN_NONE;
fail:
    for (int i = 0; i < got; i++)
        PyBuffer_Release(&buf[i]);
    return NULL;
}

/* pifs_take() -> (partials, result_bytes, command_bytes, combiner busy, combiner adds, buffer merged,
 * [(lines, adds, busy, inflight) per unit]) */
static PyObject *Loop_pifs_take(Loop *g, PyObject *Py_UNUSED(ignored))
{
    Fab *f = g->fab;
    if (!f || !f->npu) {
        PyErr_SetString(PyExc_RuntimeError, "no PIFS engine attached");
        return NULL;
    }
    PyObject *units = PyList_New(f->npu);
    if (!units)
        return NULL;
    for (int i = 0; i < f->npu; i++) {
        PyObject *t = Py_BuildValue("(LLLL)", (long long)f->pu[i].lines, (long long)f->pu[i].adds,
                                    (long long)f->pu[i].busy, (long long)f->pu[i].inflight);
        if (!t) {
            Py_DECREF(units);
            return NULL;
        }
        PyList_SET_ITEM(units, i, t);
    }
    return Py_BuildValue("(LLLLLLN)", (long long)f->partials, (long long)f->result_bytes,
                         (long long)f->command_bytes, (long long)f->comb_busy, (long long)f->comb_adds,
                         (long long)f->buf_merged, units);
}

static PyObject *i128_obj(__int128 v)
{
    /* the values are non-negative and below 2**126 */
    unsigned long long lo = (unsigned long long)(v & (((__int128)1 << 64) - 1));
    long long hi = (long long)(v >> 64);
    if (hi == 0)
        return PyLong_FromUnsignedLongLong(lo);
    PyObject *a = PyLong_FromLongLong(hi), *s = PyLong_FromLong(64), *b = NULL, *c = NULL, *r = NULL;
    if (a && s)
        b = PyNumber_Lshift(a, s);
    if (b)
        c = PyLong_FromUnsignedLongLong(lo);
    if (c)
        r = PyNumber_Add(b, c);
    Py_XDECREF(a);
    Py_XDECREF(s);
    Py_XDECREF(b);
    Py_XDECREF(c);
    return r;
}

static PyObject *wire_state(const CWire *w)
{
    return Py_BuildValue("(NNNLLL(LLLL)(NNNNN))", i128_obj(w->free_u), i128_obj(w->p_start_u),
                         i128_obj(w->p_end_u), (long long)w->flits, (long long)w->messages, (long long)w->payload,
                         (long long)w->by_type[0], (long long)w->by_type[1], (long long)w->by_type[2],
                         (long long)w->by_type[3], i128_obj(w->units[0]), i128_obj(w->units[1]),
                         i128_obj(w->units[2]), i128_obj(w->units[3]), i128_obj(w->units[4]));
}

static PyObject *link_state(const CLink *l)
{
    return Py_BuildValue("(NNii)", wire_state(&l->m2s), wire_state(&l->s2m), l->used, l->peak);
}

/* fab_take() -> (link1, [link2...], (up used, peak, requests, bytes_tx, queue delays), [(requests, bytes_rx,
 * queue delays, next_slot, pending, waiting) per output], [(reads, bytes) per expander], seq): absolute counts,
 * the queue delays since the last call (int64 bytes) */
static PyObject *Loop_fab_take(Loop *g, PyObject *Py_UNUSED(ignored))
{
    Fab *f = g->fab;
    if (!f) {
        PyErr_SetString(PyExc_RuntimeError, "no fabric engine attached");
        return NULL;
    }
    PyObject *l2 = PyList_New(f->nout), *outs = PyList_New(f->nout), *exps = PyList_New(f->nout);
    if (!l2 || !outs || !exps)
        goto fail;
    for (int i = 0; i < f->nout; i++) {
        PyObject *a = link_state(&f->l2[i]);
        PyObject *b = Py_BuildValue("(LLLNLii)", (long long)f->out[i].requests, (long long)f->out[i].bytes_rx,
                                    (long long)f->out[i].bytes_tx, take_lat(f->out[i].qd, &f->out[i].nqd),
                                    (long long)f->out[i].next_slot, f->out[i].pending, f->out[i].waiting);
        PyObject *c = Py_BuildValue("(LL)", (long long)f->exp[i].reads, (long long)f->exp[i].bytes);
        if (!a || !b || !c) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            Py_XDECREF(c);
            goto fail;
        }
        PyList_SET_ITEM(l2, i, a);
        PyList_SET_ITEM(outs, i, b);
        PyList_SET_ITEM(exps, i, c);
    }
    PyObject *up = Py_BuildValue("(iiLLLN)", f->up_used, f->up_peak, (long long)f->up_requests,
                                 (long long)f->up_bytes_rx, (long long)f->up_bytes_tx, take_lat(f->up_qd, &f->up_nqd));
    if (!up)
        goto fail;
    return Py_BuildValue("(NNNNNL)", link_state(&f->l1), l2, up, outs, exps, (long long)f->seq);
fail:
    Py_XDECREF(l2);
    Py_XDECREF(outs);
    Py_XDECREF(exps);
    return NULL;
}
