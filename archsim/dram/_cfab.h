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
       FK_L1_FIN, FK_SPACE_L1, FK_SPACE_UP, FK_SPACE_L2 };

/* one direction of a link (Wire), in units of 1/scale ps */
typedef struct {
    __int128 free_u, p_start_u, p_end_u;
    i64 scale, flit_u, cost_req, cost_drs;
    i64 flits, messages, payload, n_req, n_drs;
    __int128 u_request, u_data;
} CWire;

typedef struct {
    CWire m2s, s2m;
    i64 port_ps, phy_ps;
    int credits, used, peak, waiting; /* waiting: a space event is pending (someone waits for a credit) */
} CLink;

typedef struct {
    i64 line, addr, t_ready, seq;
    int out, next;
} FReq;

typedef struct {
    int *v;
    int head, n, cap;
} IntQ;

typedef struct {
    IntQ voq;
    i64 next_slot, requests, bytes_rx;
    int waiting, pending, exp;
    i64 *qd;
    i64 nqd, capqd;
} FOut;

typedef struct {
    i64 base, end, controller_ps, reads, bytes;
    Channel **ch;
    int nch;
    LineQ *pq;
    PyObject *drains;
} FExp;

struct Fab {
    Host *h;
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
    i64 up_requests, up_bytes_tx;
    i64 *up_qd;
    i64 up_nqd, up_capqd;
    IntQ up_wait;     /* link 1's port: requests waiting for the ingress buffer */
    LineQ l1_wait;    /* the LLC's port, the router's link queue: lines waiting for a credit */
    FReq *rq;
    int caprq, rfree;
};

/* ------------------------------------------------------------------------------------------ small pieces */

static int iq_push(IntQ *q, int x)
{
    if (q->head + q->n >= q->cap) {
        if (q->head > 0) {
            memmove(q->v, q->v + q->head, (size_t)q->n * sizeof(int));
            q->head = 0;
        }
        if (q->n >= q->cap && grow((void **)&q->v, &q->cap, sizeof(int), q->n + 1) < 0)
            return -1;
    }
    q->v[q->head + q->n++] = x;
    return 0;
}

static inline int iq_pop(IntQ *q)
{
    int x = q->v[q->head++];
    if (--q->n == 0)
        q->head = 0;
    return x;
}

/* Python's -(-a // b) for a >= 0, b > 0 */
static inline __int128 cdiv(__int128 a, __int128 b) { return (a + b - 1) / b; }

/* Wire.send of n messages (cost units each, kind request or data), arriving at `arrival`; the ps at which the
 * receiver has the last of them */
static i64 wire_send(CWire *w, i64 arrival, i64 cost, int is_req, i64 payload)
{
    __int128 a = (__int128)arrival * w->scale;
    if (a >= w->p_end_u) {
        w->flits += (i64)((w->p_end_u - w->p_start_u) / w->flit_u);
        w->p_start_u = w->p_end_u = w->free_u = a;
    }
    __int128 start = a > w->free_u ? a : w->free_u;
    __int128 end = start + cost;
    w->free_u = end;
    w->p_end_u = w->p_start_u + cdiv(end - w->p_start_u, w->flit_u) * w->flit_u;
    w->messages += 1;
    w->payload += payload;
    if (is_req) {
        w->n_req += 1;
        w->u_request += cost;
    } else {
        w->n_drs += 1;
        w->u_data += cost;
    }
    return (i64)cdiv(w->p_end_u, w->scale);
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
    slot_take(&f->l1.used, &f->l1.peak);
    i64 at = wire_send(&f->l1.m2s, now + f->l1.port_ps, f->l1.m2s.cost_req, 1, 0);
    h->sent += 1;
    return hpush(h->sc, at + f->l1.phy_ps + f->l1.port_ps, FK_L1_DELIVER, 0, ri, 0);
}

/* MemoryPort.send of the LLC's miss of `line` to the router's link queue */
static int fab_send(Fab *f, u64 line, i64 now)
{
    LineQ *q = &f->l1_wait;
    if (f->l1.used < f->l1.credits && q->n == 0)
        return fab_l1_submit(f, line, now);
    if (lq_push(q, line) < 0)
        return -1;
    f->h->stalled += 1;
    if (q->n == 1)
        f->l1.waiting = 1;
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
    return hpush(f->h->sc, now + f->fwd_ps, FK_SW_READY, 0, ri, 0);
}

/* the upstream port's ingress buffer gives a place back (UpstreamPort._release) */
static int fab_up_give(Fab *f, i64 now)
{
    f->up_used -= 1;
    if (f->up_waiting) {
        f->up_waiting = 0;
        return hpush(f->h->sc, now, FK_SPACE_UP, 0, 0, 0);
    }
    return 0;
}

static int fab_link_give(Fab *f, CLink *l, int kind, int o, i64 now)
{
    l->used -= 1;
    if (l->waiting) {
        l->waiting = 0;
        return hpush(f->h->sc, now, kind, o, 0, 0);
    }
    return 0;
}

/* Switch._arbitrate of output o */
static int fab_arbitrate(Fab *f, int o, i64 now)
{
    FOut *out = &f->out[o];
    CLink *l2 = &f->l2[o];
    while (out->waiting) {
        if (now < out->next_slot) {
            out->pending = 1;
            return hpush(f->h->sc, out->next_slot, FK_SW_RETRY, o, 0, 0);
        }
        int ri = out->voq.v[out->voq.head]; /* one input: its head wins either policy */
        if (l2->used >= l2->credits) {
            out->pending = 1;
            l2->waiting = 1;
            return 0;
        }
        iq_pop(&out->voq);
        out->waiting -= 1;
        out->next_slot = now + f->slot_ps;
        if (fab_up_give(f, now) < 0)
            return -1;
        i64 delay = now - f->rq[ri].t_ready;
        if (push_qd(&f->up_qd, &f->up_nqd, &f->up_capqd, delay) < 0 ||
            push_qd(&out->qd, &out->nqd, &out->capqd, delay) < 0)
            return -1;
        out->requests += 1;
        /* the downstream link's submit */
        slot_take(&l2->used, &l2->peak);
        i64 at = wire_send(&l2->m2s, now + l2->port_ps, l2->m2s.cost_req, 1, 0);
        if (hpush(f->h->sc, at + l2->phy_ps + l2->port_ps, FK_L2_DELIVER, o, ri, 0) < 0)
            return -1;
    }
    out->pending = 0;
    return 0;
}

static int fab_exp_wait(FExp *e, int k)
{
    Channel *s = e->ch[k];
    PyObject *ev = new_event(s->event_cls, s->env, PyList_GET_ITEM(e->drains, k));
    if (!ev)
        return -1;
    int rc = PyList_Append(s->space_waiters, ev);
    Py_DECREF(ev);
    return rc;
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
    LineQ *q = &e->pq[ch];
    if (can_accept_c(s, 0) && q->n == 0)
        return fab_exp_submit(f, e, s, ri, now);
    if (lq_push(q, (u64)ri) < 0)
        return -1;
    if (q->n == 1)
        return fab_exp_wait(e, ch);
    return 0;
}

/* ------------------------------------------------------------------------------------------ actions */

static int fab_act(Fab *f, const HRec *rec)
{
    Host *h = f->h;
    i64 now = rec->t;
    int ri = (int)rec->b;
    switch (rec->kind) {
    case FK_L1_DELIVER: /* Link._deliver: the MemoryPort to the switch's upstream port */
        if (f->up_used < f->up_depth && f->up_wait.n == 0)
            return fab_ingress(f, ri, now);
        if (iq_push(&f->up_wait, ri) < 0)
            return -1;
        if (f->up_wait.n == 1)
            f->up_waiting = 1;
        return 0;
    case FK_SW_READY: { /* Switch._ready */
        FReq *r = &f->rq[ri];
        r->t_ready = now;
        FOut *out = &f->out[r->out];
        if (iq_push(&out->voq, ri) < 0)
            return -1;
        out->waiting += 1;
        if (!out->pending)
            return fab_arbitrate(f, r->out, now);
        return 0;
    }
    case FK_SW_RETRY: /* Switch._retry */
    case FK_SPACE_L2: /* the downstream link's space event: Switch._retry_out */
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
            return hpush(h->sc, now + e->controller_ps, FK_EXP_DRAM, rec->a, ri, 0);
        return fab_exp_send(f, e, ri, now);
    }
    case FK_EXP_DRAM: /* Expander._to_dram */
        return fab_exp_send(f, &f->exp[f->out[rec->a].exp], ri, now);
    case FK_EXP_DONE: { /* the DRAM is done: the downstream link's _respond */
        int o = f->rq[ri].out;
        CLink *l2 = &f->l2[o];
        i64 at = wire_send(&l2->s2m, now + l2->port_ps, l2->s2m.cost_drs, 0, 64);
        return hpush(h->sc, at + l2->phy_ps + l2->port_ps, FK_L2_FIN, o, ri, 0);
    }
    case FK_L2_FIN: { /* the downstream link's response: its _release, then Switch._response */
        int o = rec->a;
        if (fab_link_give(f, &f->l2[o], FK_SPACE_L2, o, now) < 0)
            return -1;
        f->out[o].bytes_rx += 64;
        f->up_bytes_tx += 64;
        return hpush(h->sc, now + f->fwd_ps, FK_SW_FIN, 0, ri, 0);
    }
    case FK_SW_FIN: { /* the switch's response reaches link 1: Link._respond */
        i64 at = wire_send(&f->l1.s2m, now + f->l1.port_ps, f->l1.s2m.cost_drs, 0, 64);
        return hpush(h->sc, at + f->l1.phy_ps + f->l1.port_ps, FK_L1_FIN, 0, ri, 0);
    }
    case FK_L1_FIN: { /* link 1's response: its _release, then the LLC's _on_fill_data */
        i64 line = f->rq[ri].line;
        f->rq[ri].next = f->rfree;
        f->rfree = ri;
        if (fab_link_give(f, &f->l1, FK_SPACE_L1, 0, now) < 0)
            return -1;
        return hpush(h->sc, now + h->from_next_ps, HK_FILL, 0, line, 0);
    }
    case FK_SPACE_L1: { /* the LLC port's _drain of the router's link queue */
        LineQ *q = &f->l1_wait;
        while (q->n > 0) {
            if (f->l1.used >= f->l1.credits) {
                f->l1.waiting = 1;
                return 0;
            }
            u64 line = q->v[q->head];
            q->head++;
            if (--q->n == 0)
                q->head = 0;
            if (fab_l1_submit(f, line, now) < 0)
                return -1;
        }
        return 0;
    }
    case FK_SPACE_UP: { /* link 1's port's _drain into the upstream port */
        IntQ *q = &f->up_wait;
        while (q->n > 0) {
            if (f->up_used >= f->up_depth) {
                f->up_waiting = 1;
                return 0;
            }
            if (fab_ingress(f, iq_pop(q), now) < 0)
                return -1;
        }
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

static PyObject *Loop_fab_drain(Loop *g, PyObject *args)
{
    int e, k;
    if (!PyArg_ParseTuple(args, "ii", &e, &k))
        return NULL;
    Fab *f = g->host ? g->host->fab : NULL;
    if (!f || e < 0 || e >= f->nout || k < 0 || k >= f->exp[e].nch) {
        PyErr_SetString(PyExc_ValueError, "fab_drain: no such expander channel");
        return NULL;
    }
    i64 now;
    if (now_ps(g->env, &now) < 0)
        return NULL;
    FExp *x = &f->exp[e];
    LineQ *q = &x->pq[k];
    Channel *s = x->ch[k];
    while (q->n > 0) {
        if (!can_accept_c(s, 0)) {
            if (fab_exp_wait(x, k) < 0)
                return NULL;
            break;
        }
        int ri = (int)q->v[q->head];
        q->head++;
        if (--q->n == 0)
            q->head = 0;
        if (fab_exp_submit(f, x, s, ri, now) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static void fab_free(Fab *f)
{
    if (!f)
        return;
    if (f->exp) {
        for (int i = 0; i < f->nout; i++) {
            Py_XDECREF(f->exp[i].drains);
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
    PyMem_Free(f);
}

static int fab_traverse(Fab *f, visitproc visit, void *arg)
{
    if (!f)
        return 0;
    for (int i = 0; i < f->nout; i++)
        Py_VISIT(f->exp[i].drains);
    return 0;
}

/* link: (port_ps, phy_ps, credits, scale, flit_u, cost_req, cost_drs) */
static int parse_link(PyObject *t, CLink *l)
{
    long long port, phy, scale, flit, creq, cdrs;
    int credits;
    if (!PyArg_ParseTuple(t, "LLiLLLL", &port, &phy, &credits, &scale, &flit, &creq, &cdrs))
        return -1;
    memset(l, 0, sizeof(*l));
    l->port_ps = port;
    l->phy_ps = phy;
    l->credits = credits;
    for (int d = 0; d < 2; d++) {
        CWire *w = d ? &l->s2m : &l->m2s;
        w->scale = scale;
        w->flit_u = flit;
        w->cost_req = creq;
        w->cost_drs = cdrs;
    }
    if (scale < 1 || flit < 1 || credits < 1) {
        PyErr_SetString(PyExc_ValueError, "attach_fab: bad link");
        return -1;
    }
    return 0;
}

/* attach_fab(dram_lo, dram_hi, link1, fwd_ps, slot_ps, up_depth, oldest_first, spans, outputs, expanders):
 * spans [(lo, hi, output)], outputs [(link, expander index)], expanders [(base, end, controller_ps, channels,
 * drains)] */
static PyObject *Loop_attach_fab(Loop *g, PyObject *args)
{
    long long dlo, dhi, fwd, slot;
    PyObject *l1, *spans, *outs, *exps;
    int depth, oldest;
    if (!PyArg_ParseTuple(args, "LLOLLipO!O!O!", &dlo, &dhi, &l1, &fwd, &slot, &depth, &oldest, &PyList_Type,
                          &spans, &PyList_Type, &outs, &PyList_Type, &exps))
        return NULL;
    Host *h = g->host;
    if (!h || h->fab) {
        PyErr_SetString(PyExc_RuntimeError, "attach_fab needs the host engine, once");
        return NULL;
    }
    int nout = (int)PyList_GET_SIZE(outs), nspan = (int)PyList_GET_SIZE(spans);
    if (nout < 1 || PyList_GET_SIZE(exps) != nout || nspan < 1 || depth < 1) {
        PyErr_SetString(PyExc_ValueError, "attach_fab: bad arguments");
        return NULL;
    }
    Fab *f = PyMem_Calloc(1, sizeof(Fab));
    if (!f)
        return PyErr_NoMemory();
    f->h = h;
    f->rfree = -1;
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
        PyObject *lt;
        int e;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(outs, i), "Oi", &lt, &e) || parse_link(lt, &f->l2[i]) < 0)
            goto fail;
        f->out[i].exp = i;
        (void)e;
        long long base, end, ctl;
        PyObject *chans, *drains;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(exps, i), "LLLO!O!", &base, &end, &ctl, &PyTuple_Type, &chans,
                              &PyList_Type, &drains))
            goto fail;
        FExp *x = &f->exp[i];
        x->base = base;
        x->end = end;
        x->controller_ps = ctl;
        x->nch = (int)PyTuple_GET_SIZE(chans);
        x->ch = PyMem_Calloc((size_t)(x->nch > 0 ? x->nch : 1), sizeof(Channel *));
        x->pq = PyMem_Calloc((size_t)(x->nch > 0 ? x->nch : 1), sizeof(LineQ));
        if (!x->ch || !x->pq) {
            PyErr_NoMemory();
            goto fail;
        }
        x->drains = Py_NewRef(drains);
        if (x->nch < 1 || PyList_GET_SIZE(drains) != x->nch) {
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
    h->fab = f;
    Py_RETURN_NONE;
fail:
    fab_free(f);
    return NULL;
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
    return Py_BuildValue("(NNNLLLLLNN)", i128_obj(w->free_u), i128_obj(w->p_start_u), i128_obj(w->p_end_u),
                         (long long)w->flits, (long long)w->messages, (long long)w->payload, (long long)w->n_req,
                         (long long)w->n_drs, i128_obj(w->u_request), i128_obj(w->u_data));
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
    Fab *f = g->host ? g->host->fab : NULL;
    if (!f) {
        PyErr_SetString(PyExc_RuntimeError, "no fabric engine attached");
        return NULL;
    }
    PyObject *l2 = PyList_New(f->nout), *outs = PyList_New(f->nout), *exps = PyList_New(f->nout);
    if (!l2 || !outs || !exps)
        goto fail;
    for (int i = 0; i < f->nout; i++) {
        PyObject *a = link_state(&f->l2[i]);
        PyObject *b = Py_BuildValue("(LLNLii)", (long long)f->out[i].requests, (long long)f->out[i].bytes_rx,
                                    take_lat(f->out[i].qd, &f->out[i].nqd), (long long)f->out[i].next_slot,
                                    f->out[i].pending, f->out[i].waiting);
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
    PyObject *up = Py_BuildValue("(iiLLN)", f->up_used, f->up_peak, (long long)f->up_requests,
                                 (long long)f->up_bytes_tx, take_lat(f->up_qd, &f->up_nqd));
    if (!up)
        goto fail;
    return Py_BuildValue("(NNNNNL)", link_state(&f->l1), l2, up, outs, exps, (long long)f->seq);
fail:
    Py_XDECREF(l2);
    Py_XDECREF(outs);
    Py_XDECREF(exps);
    return NULL;
}
