/*
 * _cnmp.h: the compiled NMP engine (issue #15), part of the _cchannel translation unit (included by
 * _cchannel.c after _csched.h, whose heap and merged run it uses).
 *
 * What it replaces: archsim/nmp/rank.py from an instruction's trip over the C/A bus on: RankNMP._deliver,
 * RankUnit.read (the rank cache's lookups and its reads in flight), _send_runs through the units' MemoryPort
 * into the rank-local DRAM system, _on_data / _on_data_uncached (the rank bus of cross-level reads, the fills),
 * _pool / _pool_part (the units' serial datapaths), partial_ready (the bank-group adders, the rank buffer chip,
 * the channel bus) and the scheduling of _bag_done.  The Python classes stay the reference; this engine must
 * give the same results bit for bit (tests/test_host_engine.py).  Every event they schedule is a record of the
 * heap (_csched.h) at the reference's key.
 *
 * What stays in Python: the decoding of a batch's bags into instructions and parts (archsim/nmp/engine.py,
 * vectorised over the batch; the units and rank nodes each part goes to are built here), _bag_done (one call per
 * bag: it completes the bag's GatherReduce), and the port's wait for queue space (a space event per full
 * channel, as in MemoryPort).
 */

typedef struct {
    PyObject *gr;
    i64 parts_left, t_end, t_first, t_hit, dim_ps, bursts;
} NBag;

/* a unit's share of a bag (_Part) */
typedef struct {
    i64 bag, left, elems, pool_ps;
    int unit, up; /* up: node index or -1 */
} NPart;

/* where partial sums gather below the host (_RankPart): a rank's buffer chip (bg < 0) or a bank group's adder */
typedef struct {
    i64 bag, left, t_ready;
    int ch, rank, bg, up;
} NNode;

typedef struct {
    int ch, rank, sub, cached;
    i64 busy, adds, lines, merged;
    PyObject *tags; /* the rank cache's LRU tags (NULL: none) */
} NUnit;

typedef struct {
    i64 t, part, l0, n;
    int cab;
} NInst;

typedef struct {
    NInst *v;
    int head, n, cap;
} InstQ;

/* a DRAM read of the units (one MemRequest of the reference: a run of lines of one row) */
typedef struct {
    i64 addr, n, t_submit, part;
    int unit, fill, next; /* next: free list */
} NReq;

struct Nmp {
    Sched *sc;
    /* ---- configuration */
    const ArchsimTagsAPI *api;
    Channel **ch; /* the rank-local DRAM system's channels */
    int nch, nunits, nhost_ch, ranks, bgs, bpg, level_rank, cross, bg_adders;
    i64 to_ps, hit_ps, burst_ps, ccd_l_ps, from_ps, combine_ps, access_bytes;
    double inst_ps;
    PyObject *bag_done, *tags_list;
    NUnit *units;
    /* ---- state */
    double *ca_free;
    i64 *bus_free, *rank_bus_free, *bg_bus_free;
    InstQ *caq;
    Fifo *pq; /* per local channel: requests waiting for queue space (MemoryPort.waiting) */
    NBag *bags;
    NPart *parts;
    NNode *nodes;
    i64 *laddr;
    int nbags, capbags, nparts, capparts, nnodes, capnodes;
    i64 nladdr, capladdr;
    i64 outstanding; /* bags dispatched and not yet done */
    NReq *req;
    int capreq, rfree;
    PendMap pm; /* the rank caches' reads in flight */
    /* ---- counters not yet taken by Python */
    i64 instructions, partials, bg_bus_partials, rank_bus_partials, result_bytes;
};

/* ------------------------------------------------------------------------------------------ rank caches */

/* LineBuffer.lookup: 0 HIT, 1 MERGED (part waits for the read in flight), 2 MISS (a read in flight now) */
static int rc_lookup(Nmp *m, int unit, u64 addr, i64 part)
{
    NUnit *u = &m->units[unit];
    if (m->api->lookup(u->tags, addr >> 6, 0))
        return 0;
    int rc = pm_join(&m->pm, unit, addr, part);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        u->merged += 1;
        return 1;
    }
    return 2;
}

/* ------------------------------------------------------------------------------------------ pooling */

static int nmp_partial_ready(Nmp *m, int is_node, i64 idx, i64 t_ready);

/* RankUnit._pool_part */
static int pool_part(Nmp *m, i64 pi, i64 now, i64 n, int streamed)
{
    NPart *p = &m->parts[pi];
    NUnit *u = &m->units[p->unit];
    i64 t;
    if (streamed && n > 1) { /* Datapath.pool_stream */
        i64 gap = p->pool_ps - m->ccd_l_ps;
        t = now + p->pool_ps + (n - 1) * (gap > 0 ? gap : 0);
        i64 t2 = u->busy + n * p->pool_ps;
        t = t > t2 ? t : t2;
    } else { /* Datapath.pool */
        t = (u->busy > now ? u->busy : now) + n * p->pool_ps;
    }
    u->busy = t;
    u->adds += n * p->elems;
    p->left -= n;
    if (p->left == 0)
        return nmp_partial_ready(m, 0, pi, t);
    return 0;
}

/* RankNMP.partial_ready of a part (is_node 0) or of a node */
static int nmp_partial_ready(Nmp *m, int is_node, i64 idx, i64 t_ready)
{
    i64 bi;
    int up, ch;
    if (is_node) {
        bi = m->nodes[idx].bag;
        up = m->nodes[idx].up;
        ch = m->nodes[idx].ch;
    } else {
        bi = m->parts[idx].bag;
        up = m->parts[idx].up;
        ch = m->units[m->parts[idx].unit].ch;
    }
    NBag *b = &m->bags[bi];
    if (up >= 0) {
        NNode *un = &m->nodes[up];
        i64 t = t_ready;
        if (!is_node && m->units[m->parts[idx].unit].sub < 0) {
            /* the rank unit's own share (cross level): already in the buffer chip */
        } else if (un->bg >= 0) { /* a bank unit's partial sum to its bank group's adder */
            i64 i = ((i64)un->ch * m->ranks + un->rank) * m->bgs + un->bg;
            i64 f = m->bg_bus_free[i];
            t = (t_ready > f ? t_ready : f) + b->bursts * m->ccd_l_ps;
            m->bg_bus_free[i] = t;
            m->partials += 1;
            m->bg_bus_partials += 1;
        } else { /* a bank group's or bank's partial sum crosses the rank's internal bus */
            i64 i = (i64)un->ch * m->ranks + un->rank;
            i64 f = m->rank_bus_free[i];
            t = (t_ready > f ? t_ready : f) + b->bursts * m->burst_ps;
            m->rank_bus_free[i] = t;
            m->partials += 1;
            m->rank_bus_partials += 1;
        }
        t += b->dim_ps; /* the adder above adds it into its partial sum */
        if (t > un->t_ready)
            un->t_ready = t;
        un->left -= 1;
        if (un->left == 0)
            return nmp_partial_ready(m, 1, up, un->t_ready);
        return 0;
    }
    i64 f = m->bus_free[ch];
    i64 t = (t_ready > f ? t_ready : f) + b->bursts * m->burst_ps;
    m->bus_free[ch] = t;
    m->partials += 1;
    m->result_bytes += b->bursts * m->access_bytes;
    i64 t_host = t + m->from_ps + m->combine_ps;
    if (t_host > b->t_end)
        b->t_end = t_host;
    b->parts_left -= 1;
    if (b->parts_left == 0)
        return hpush(m->sc, b->t_end, NK_BAGDONE, 0, bi, 0);
    return 0;
}

/* ------------------------------------------------------------------------------------------ DRAM reads */

/* DRAMSystem.submit of read `ri` at `now` (the channel accepts it: checked): one slot per burst, completing
 * with its last, as Channel_submit / submit_bursts */
static int nmp_submit(Nmp *m, Channel *s, int ri, i64 now)
{
    NReq *q = &m->req[ri];
    q->t_submit = now;
    i64 c;
    if (accept_cycle(s, now, &c) < 0)
        return -1;
    i64 nburst = q->n * 64 > s->access_bytes ? (q->n * 64 + s->access_bytes - 1) / s->access_bytes : 1;
    if (nburst == 1) {
        if (engine_read(s, (u64)q->addr, c, 2, ri, -1) < 0)
            return -1;
        return wake(s, c);
    }
    int g = req_alloc(s); /* the request's own slot, held by its bursts; it completes with the last */
    if (g < 0)
        return -1;
    Req *gr = &s->reqs[g];
    gr->refs = 1;
    gr->left = (int)nburst;
    gr->index = ri;
    gr->host = 2;
    gr->addr = (u64)q->addr;
    gr->is_write = 0;
    for (i64 b = 0; b < nburst; b++)
        if (engine_read(s, (u64)q->addr + (u64)(b * s->access_bytes), c, 0, -1, g) < 0)
            return -1;
    req_unref(s, g);
    return wake(s, c);
}

static int nmp_wait_space(Nmp *m, int k)
{
    return engine_wait_space(m->ch[k], 2, 0, k);
}

/* MemoryPort.send of a run of n lines from addr for part `pi` of unit `ui` at `now` */
static int nmp_send(Nmp *m, int ui, i64 pi, i64 addr, i64 n, int fill, i64 now)
{
    int ch, fb, row, col;
    decode(m->ch[0], (u64)addr, &ch, &fb, &row, &col);
    if (ch < 0 || ch >= m->nch) {
        PyErr_Format(PyExc_ValueError, "address 0x%llx maps to channel %d of %d", (unsigned long long)addr, ch,
                     m->nch);
        return -1;
    }
    Channel *s = m->ch[ch];
    i64 nb = n * 64 > s->access_bytes ? (n * 64 + s->access_bytes - 1) / s->access_bytes : 1;
    for (i64 b = 1; b < nb; b++) { /* Channel_submit's check */
        int ch1, f, ro, co;
        decode(s, (u64)addr + (u64)(b * s->access_bytes), &ch1, &f, &ro, &co);
        if (ch1 != ch) {
            PyErr_SetString(PyExc_ValueError, "a multi-burst request must stay in one channel");
            return -1;
        }
    }
    int ri = fl_take((void **)&m->req, &m->capreq, &m->rfree, sizeof(NReq), offsetof(NReq, next));
    if (ri < 0)
        return -1;
    NReq *q = &m->req[ri];
    q->addr = addr;
    q->n = n;
    q->part = pi;
    q->unit = ui;
    q->fill = fill;
    Fifo *w = &m->pq[ch];
    if (can_accept_c(s, 0) && w->n == 0)
        return nmp_submit(m, s, ri, now);
    if (fifo_push(w, ri) < 0)
        return -1;
    if (w->n == 1)
        return nmp_wait_space(m, ch);
    return 0;
}

/* RankUnit._send_runs: one read per run of consecutive lines */
static int send_runs(Nmp *m, int ui, i64 pi, const i64 *lines, i64 n, int fill, i64 now)
{
    i64 start = lines[0], k = 1;
    for (i64 i = 1; i < n; i++) {
        if (lines[i] == start + 64 * k) {
            k++;
            continue;
        }
        if (nmp_send(m, ui, pi, start, k, fill, now) < 0)
            return -1;
        start = lines[i];
        k = 1;
    }
    if (nmp_send(m, ui, pi, start, k, fill, now) < 0)
        return -1;
    m->units[ui].lines += n;
    return 0;
}

/* RankUnit.read: an instruction reached its unit */
static int unit_read(Nmp *m, const NInst *in, i64 now)
{
    NPart *p = &m->parts[in->part];
    int ui = p->unit;
    NUnit *u = &m->units[ui];
    const i64 *lines = m->laddr + in->l0;
    if (!u->cached || !in->cab)
        return send_runs(m, ui, in->part, lines, in->n, 0, now);
    i64 hits = 0, shared = 0, nmiss = 0;
    i64 *miss = PyMem_Malloc((size_t)in->n * sizeof(i64));
    if (!miss) {
        PyErr_NoMemory();
        return -1;
    }
    for (i64 i = 0; i < in->n; i++) {
        int r = rc_lookup(m, ui, (u64)lines[i], in->part);
        if (r < 0) {
            PyMem_Free(miss);
            return -1;
        }
        if (r == 0)
            hits++;
        else if (r == 1)
            shared++;
        else
            miss[nmiss++] = lines[i];
    }
    if (hits || shared) {
        NBag *b = &m->bags[p->bag];
        if (now < b->t_hit)
            b->t_hit = now;
    }
    int rc = nmiss ? send_runs(m, ui, in->part, miss, nmiss, 1, now) : 0;
    PyMem_Free(miss);
    if (rc < 0)
        return -1;
    if (hits)
        return hpush(m->sc, now + m->hit_ps, NK_POOL, 0, in->part, hits);
    return 0;
}

/* RankNMP._deliver: the instructions of channel c due now reach their units */
static int nmp_deliver(Nmp *m, int c, i64 now)
{
    InstQ *q = &m->caq[c];
    while (q->n > 0 && q->v[q->head].t <= now) {
        NInst in = q->v[q->head];
        q->head++;
        q->n--;
        if (unit_read(m, &in, now) < 0)
            return -1;
    }
    if (q->n == 0)
        q->head = 0;
    else
        return hpush(m->sc, q->v[q->head].t, NK_DELIVER, c, 0, 0);
    return 0;
}

/* RankUnit._on_data / _on_data_uncached: read `ri` is here */
static int nmp_data(Nmp *m, int ri, i64 now)
{
    NReq q = m->req[ri];
    m->req[ri].next = m->rfree;
    m->rfree = ri;
    NUnit *u = &m->units[q.unit];
    NBag *b = &m->bags[m->parts[q.part].bag];
    if (q.t_submit < b->t_first)
        b->t_first = q.t_submit; /* the rank's controller took the read then */
    i64 arrive = now; /* _arrival */
    if (m->cross && u->sub < 0) {
        i64 i = (i64)u->ch * m->ranks + u->rank;
        i64 a1 = m->rank_bus_free[i] + q.n * m->burst_ps, a2 = now + m->burst_ps;
        arrive = a1 > a2 ? a1 : a2;
        m->rank_bus_free[i] = arrive;
    }
    if (pool_part(m, q.part, arrive, q.n, 1) < 0)
        return -1;
    if (!q.fill)
        return 0;
    for (i64 k = 0; k < q.n; k++) { /* LineBuffer.fill: hold the line, then the parts that waited for it */
        u64 addr = (u64)q.addr + (u64)(64 * k);
        u64 vl;
        int vd;
        if (m->api->fill(u->tags, addr >> 6, 0, &vl, &vd) < 0)
            return -1;
        int wi = pm_take(&m->pm, q.unit, addr);
        if (wi == -2) {
            PyErr_SetString(PyExc_RuntimeError, "NMP engine: a fill without a read in flight");
            return -1;
        }
        while (wi >= 0) {
            i64 part;
            wi = pm_next(&m->pm, wi, &part);
            if (pool_part(m, part, arrive, 1, 0) < 0)
                return -1;
        }
    }
    return 0;
}

static int nmp_bag_done(Nmp *m, i64 bi)
{
    NBag *b = &m->bags[bi];
    PyObject *gr = b->gr;
    b->gr = NULL; /* taken before calling Python, which may not see the arrays as they were */
    PyObject *r = PyObject_CallFunction(m->bag_done, "OLL", gr, (long long)b->t_first, (long long)b->t_hit);
    Py_DECREF(gr);
    m->outstanding -= 1;
    if (!r)
        return -1;
    Py_DECREF(r);
    m->sc->sh_valid = 0; /* the bag's done event is in SimPy's queue */
    return 0;
}

static int nmp_act(Nmp *m, const HRec *r)
{
    switch (r->kind) {
    case NK_DELIVER:
        return nmp_deliver(m, r->a, r->t);
    case NK_POOL:
        return pool_part(m, r->b, r->t, r->c, 0);
    case NK_DATA:
        return nmp_data(m, (int)r->b, r->t);
    default:
        return nmp_bag_done(m, r->b);
    }
}

/* the DRAM completed the units' read `ri` (from tick) */
static int nmp_dram_done(Loop *g, i64 ri, i64 now)
{
    return hpush(g->nmp->sc, now, NK_DATA, 0, ri, 0);
}

/* ------------------------------------------------------------------------------------------ Python face */

/* MemoryPort._drain of the units' port for channel k (the callback of a space event) */
static int nmp_drain(Nmp *m, int k, i64 now)
{
    if (k < 0 || k >= m->nch) {
        PyErr_SetString(PyExc_ValueError, "nmp_drain: no such channel");
        return -1;
    }
    Fifo *q = &m->pq[k];
    Channel *s = m->ch[k];
    while (q->n > 0) {
        if (!can_accept_c(s, 0))
            return nmp_wait_space(m, k);
        if (nmp_submit(m, s, (int)fifo_pop(q), now) < 0)
            return -1;
    }
    return 0;
}

static void nmp_free(Nmp *m)
{
    if (!m)
        return;
    Py_XDECREF(m->bag_done);
    Py_XDECREF(m->tags_list);
    for (int i = 0; i < m->nbags; i++)
        Py_XDECREF(m->bags[i].gr);
    if (m->pq)
        for (int i = 0; i < m->nch; i++)
            PyMem_Free(m->pq[i].v);
    if (m->caq)
        for (int i = 0; i < m->nhost_ch; i++)
            PyMem_Free(m->caq[i].v);
    PyMem_Free(m->pq);
    PyMem_Free(m->caq);
    PyMem_Free(m->ch);
    PyMem_Free(m->units);
    PyMem_Free(m->ca_free);
    PyMem_Free(m->bus_free);
    PyMem_Free(m->rank_bus_free);
    PyMem_Free(m->bg_bus_free);
    PyMem_Free(m->bags);
    PyMem_Free(m->parts);
    PyMem_Free(m->nodes);
    PyMem_Free(m->laddr);
    PyMem_Free(m->req);
    pm_free(&m->pm);
    PyMem_Free(m);
}

static int nmp_traverse(Nmp *m, visitproc visit, void *arg)
{
    if (!m)
        return 0;
    Py_VISIT(m->bag_done);
    Py_VISIT(m->tags_list);
    for (int i = 0; i < m->nbags; i++)
        Py_VISIT(m->bags[i].gr);
    return 0;
}

/* attach_nmp(channels, units, cfg, bag_done, queue, eid, heappush, proxy_cls): units is a list of
 * (host channel, rank, sub, tags or None) in unit-id order; cfg a dict of the timing and level */
static PyObject *Loop_attach_nmp(Loop *g, PyObject *args)
{
    PyObject *chans, *units, *cfg, *bag_done, *queue, *eid_it, *heappush, *proxy_cls;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOOO", &PyTuple_Type, &chans, &PyList_Type, &units, &PyDict_Type, &cfg,
                          &bag_done, &queue, &eid_it, &heappush, &proxy_cls))
        return NULL;
    if (g->nmp || g->src_state != SRC_OFF) {
        PyErr_SetString(PyExc_RuntimeError, "the loop already has an NMP engine or a source");
        return NULL;
    }
    int nch = (int)PyTuple_GET_SIZE(chans);
    if (nch < 1 || PyList_GET_SIZE(units) < 1) {
        PyErr_SetString(PyExc_ValueError, "attach_nmp: bad arguments");
        return NULL;
    }
    const ArchsimTagsAPI *api = PyCapsule_Import(ARCHSIM_TAGS_CAPSULE, 0);
    if (!api)
        return NULL;
    i64 v[13];
    static const char *keys[] = {"host_channels", "ranks", "bankgroups", "level_rank", "cross", "bg_adders",
                                 "to_ps", "hit_ps", "burst_ps", "ccd_l_ps", "from_ps", "combine_ps",
                                 "banks_per_group"};
    for (int i = 0; i < 13; i++)
        if (dict_int(cfg, keys[i], &v[i]) < 0)
            return NULL;
    i64 access_bytes;
    if (dict_int(cfg, "access_bytes", &access_bytes) < 0)
        return NULL;
    PyObject *ip = PyDict_GetItemString(cfg, "inst_ps");
    if (!ip) {
        PyErr_SetString(PyExc_KeyError, "inst_ps");
        return NULL;
    }
    double inst_ps = PyFloat_AsDouble(ip);
    if (inst_ps == -1.0 && PyErr_Occurred())
        return NULL;
    for (int i = 0; i < nch; i++) {
        PyObject *c = PyTuple_GET_ITEM(chans, i);
        int found = 0;
        for (int j = 0; j < g->n; j++)
            found |= (PyObject *)g->ch[j] == c;
        if (!found) {
            PyErr_SetString(PyExc_ValueError, "attach_nmp: a channel of another loop");
            return NULL;
        }
    }
    Sched *sc = sched_get(g, queue, eid_it, heappush, proxy_cls);
    if (!sc)
        return NULL;
    Nmp *m = PyMem_Calloc(1, sizeof(Nmp));
    if (!m)
        return PyErr_NoMemory();
    m->sc = sc;
    m->api = api;
    m->nch = nch;
    m->nhost_ch = (int)v[0];
    m->ranks = (int)v[1];
    m->bgs = (int)v[2];
    m->level_rank = (int)v[3];
    m->cross = (int)v[4];
    m->bg_adders = (int)v[5];
    m->to_ps = v[6];
    m->hit_ps = v[7];
    m->burst_ps = v[8];
    m->ccd_l_ps = v[9];
    m->from_ps = v[10];
    m->combine_ps = v[11];
    m->bpg = v[12] > 0 ? (int)v[12] : 1;
    m->access_bytes = access_bytes;
    m->inst_ps = inst_ps;
    m->nunits = (int)PyList_GET_SIZE(units);
    m->rfree = -1;
    m->pm.wfree = -1;
    int nhc = m->nhost_ch, nr = nhc * m->ranks;
    m->ch = PyMem_Calloc((size_t)nch, sizeof(Channel *));
    m->pq = PyMem_Calloc((size_t)nch, sizeof(Fifo));
    m->caq = PyMem_Calloc((size_t)nhc, sizeof(InstQ));
    m->units = PyMem_Calloc((size_t)m->nunits, sizeof(NUnit));
    m->ca_free = PyMem_Calloc((size_t)nhc, sizeof(double));
    m->bus_free = PyMem_Calloc((size_t)nhc, sizeof(i64));
    m->rank_bus_free = PyMem_Calloc((size_t)nr, sizeof(i64));
    m->bg_bus_free = PyMem_Calloc((size_t)nr * (size_t)(m->bgs > 0 ? m->bgs : 1), sizeof(i64));
    m->bag_done = Py_NewRef(bag_done);
    m->tags_list = Py_NewRef(units);
    if (!m->ch || !m->pq || !m->caq || !m->units || !m->ca_free || !m->bus_free || !m->rank_bus_free ||
        !m->bg_bus_free) {
        nmp_free(m);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < nch; i++)
        m->ch[i] = (Channel *)PyTuple_GET_ITEM(chans, i);
    for (int i = 0; i < m->nunits; i++) {
        PyObject *t = PyList_GET_ITEM(units, i);
        int c, r, sub;
        PyObject *tags;
        if (!PyArg_ParseTuple(t, "iiiO", &c, &r, &sub, &tags)) {
            nmp_free(m);
            return NULL;
        }
        NUnit *u = &m->units[i];
        u->ch = c;
        u->rank = r;
        u->sub = sub;
        if (tags != Py_None) {
            if ((PyObject *)Py_TYPE(tags) != (PyObject *)api->type) {
                nmp_free(m);
                PyErr_SetString(PyExc_TypeError, "attach_nmp: a rank cache's tags must be an LRUTags");
                return NULL;
            }
            u->cached = 1;
            u->tags = tags; /* held by tags_list */
        }
    }
    g->nmp = m;
    Py_RETURN_NONE;
}

/* nmp_dispatch(grs, bag_pool_ps, bag_dim_ps, bag_bursts, part_bag, part_unit, part_lines, part_elems,
 *              inst_part, inst_l0, inst_n, inst_cab, laddr): the bags of `grs` (in order) dispatched now, as
 * RankNMP._dispatch does one after another (all int64 arrays; bag, part and line indices local to the call) */
static PyObject *Loop_nmp_dispatch(Loop *g, PyObject *args)
{
    Nmp *m = g->nmp;
    PyObject *grs, *a[12];
    if (!m) {
        PyErr_SetString(PyExc_RuntimeError, "no NMP engine attached");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!OOOOOOOOOOOO", &PyList_Type, &grs, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5],
                          &a[6], &a[7], &a[8], &a[9], &a[10], &a[11]))
        return NULL;
    i64 nb = PyList_GET_SIZE(grs);
    Py_buffer buf[12];
    const i64 *v[12];
    int got = 0;
    for (; got < 12; got++) {
        if (PyObject_GetBuffer(a[got], &buf[got], PyBUF_C_CONTIGUOUS) < 0)
            goto fail;
        v[got] = (const i64 *)buf[got].buf;
    }
    i64 np_ = buf[3].len / (Py_ssize_t)sizeof(i64), ni = buf[7].len / (Py_ssize_t)sizeof(i64);
    i64 nl = buf[11].len / (Py_ssize_t)sizeof(i64);
    for (int i = 0; i < 12; i++) { /* the bag, part and instruction arrays each of one length */
        i64 want = i < 3 ? nb : i < 7 ? np_ : i < 11 ? ni : nl;
        if (buf[i].len != (Py_ssize_t)(want * (i64)sizeof(i64))) {
            PyErr_SetString(PyExc_ValueError, "nmp_dispatch: an array of the wrong size");
            goto fail;
        }
    }
    if (m->outstanding == 0) { /* every earlier bag is done: start the arrays again */
        for (int i = 0; i < m->nbags; i++)
            Py_CLEAR(m->bags[i].gr);
        m->nbags = m->nparts = m->nnodes = 0;
        m->nladdr = 0;
    }
    i64 now;
    if (now_ps(g->env, &now) < 0)
        goto fail;
    int b0 = m->nbags, p0 = m->nparts;
    i64 l0 = m->nladdr;
    if (grow((void **)&m->bags, &m->capbags, sizeof(NBag), (int)(b0 + nb)) < 0 ||
        grow((void **)&m->parts, &m->capparts, sizeof(NPart), (int)(p0 + np_)) < 0 ||
        grow((void **)&m->nodes, &m->capnodes, sizeof(NNode), m->nnodes + 2 * (int)np_) < 0 ||
        grow64(&m->laddr, &m->capladdr, l0 + nl) < 0)
        goto fail;
    memcpy(m->laddr + l0, v[11], (size_t)nl * sizeof(i64));
    m->nladdr += nl;
    for (i64 i = 0; i < nb; i++) {
        NBag *b = &m->bags[b0 + i];
        b->gr = Py_NewRef(PyList_GET_ITEM(grs, i));
        b->parts_left = 0;
        b->t_end = 0;
        b->t_first = (i64)1 << 62;
        b->t_hit = (i64)1 << 62;
        b->dim_ps = v[1][i];
        b->bursts = v[2][i];
    }
    m->nbags += (int)nb;
    m->outstanding += nb;
    /* parts, and the nodes above them (per bag: one per rank; per bank group with adders) */
    int bag_first_node = m->nnodes;
    i64 cur_bag = -1;
    for (i64 j = 0; j < np_; j++) {
        i64 bi = b0 + v[3][j];
        NPart *p = &m->parts[p0 + j];
        p->bag = bi;
        p->unit = (int)v[4][j];
        p->left = v[5][j];
        p->elems = v[6][j];
        p->pool_ps = v[0][bi - b0];
        p->up = -1;
        if (p->unit < 0 || p->unit >= m->nunits) {
            PyErr_SetString(PyExc_ValueError, "nmp_dispatch: no such unit");
            goto fail;
        }
        if (bi != cur_bag) {
            cur_bag = bi;
            bag_first_node = m->nnodes;
        }
        NUnit *u = &m->units[p->unit];
        NBag *b = &m->bags[bi];
        if (m->level_rank) {
            b->parts_left += 1; /* a rank unit per rank: each part is its rank's share */
            continue;
        }
        /* the rank's node */
        int rn = -1;
        for (int k = bag_first_node; k < m->nnodes; k++)
            if (m->nodes[k].bg < 0 && m->nodes[k].ch == u->ch && m->nodes[k].rank == u->rank) {
                rn = k;
                break;
            }
        if (rn < 0) {
            rn = m->nnodes++;
            NNode *n = &m->nodes[rn];
            n->bag = bi;
            n->left = 0;
            n->t_ready = 0;
            n->ch = u->ch;
            n->rank = u->rank;
            n->bg = -1;
            n->up = -1;
            b->parts_left += 1;
        }
        int up = rn;
        if (m->bg_adders && u->sub >= 0) { /* a bank unit: its bank group's adder first */
            int bg = u->sub / m->bpg;
            int gn = -1;
            for (int k = bag_first_node; k < m->nnodes; k++)
                if (m->nodes[k].bg == bg && m->nodes[k].ch == u->ch && m->nodes[k].rank == u->rank) {
                    gn = k;
                    break;
                }
            if (gn < 0) {
                gn = m->nnodes++;
                NNode *n = &m->nodes[gn];
                n->bag = bi;
                n->left = 0;
                n->t_ready = 0;
                n->ch = u->ch;
                n->rank = u->rank;
                n->bg = bg;
                n->up = rn;
                m->nodes[rn].left += 1;
            }
            up = gn;
        }
        m->nodes[up].left += 1;
        p->up = up;
    }
    m->nparts += (int)np_;
    /* the instructions onto the C/A buses, in order */
    double t0 = (double)(now + m->to_ps);
    m->instructions += ni;
    for (i64 i = 0; i < ni; i++) {
        NPart *p = &m->parts[p0 + v[7][i]];
        int c = m->units[p->unit].ch;
        double f = m->ca_free[c];
        double t = (t0 > f ? t0 : f) + m->inst_ps;
        m->ca_free[c] = t;
        InstQ *q = &m->caq[c];
        if (q->head + q->n >= q->cap) {
            if (q->head > 0) {
                memmove(q->v, q->v + q->head, (size_t)q->n * sizeof(NInst));
                q->head = 0;
            }
            if (q->n >= q->cap && grow((void **)&q->v, &q->cap, sizeof(NInst), q->n + 1) < 0)
                goto fail;
        }
        NInst *in = &q->v[q->head + q->n++];
        in->t = (i64)ceil(t);
        in->part = p0 + v[7][i];
        in->l0 = l0 + v[8][i];
        in->n = v[9][i];
        in->cab = (int)v[10][i];
        if (q->n == 1 && hpush(m->sc, in->t, NK_DELIVER, c, 0, 0) < 0)
            goto fail;
    }
    for (int i = 0; i < got; i++)
        PyBuffer_Release(&buf[i]);
    if (ensure_proxy(g, m->sc) < 0)
        return NULL;
    Py_RETURN_NONE;
fail:
    for (int i = 0; i < got; i++)
        PyBuffer_Release(&buf[i]);
    return NULL;
}

/* nmp_take() -> (instructions, partials, bg_bus_partials, rank_bus_partials, result_bytes, [(lines, adds,
 * merged) per unit]): the counts since the last call */
static PyObject *Loop_nmp_take(Loop *g, PyObject *Py_UNUSED(ignored))
{
    Nmp *m = g->nmp;
    if (!m) {
        PyErr_SetString(PyExc_RuntimeError, "no NMP engine attached");
        return NULL;
    }
    PyObject *per = PyList_New(m->nunits);
    if (!per)
        return NULL;
    for (int i = 0; i < m->nunits; i++) {
        NUnit *u = &m->units[i];
        PyObject *t = Py_BuildValue("(LLL)", (long long)u->lines, (long long)u->adds, (long long)u->merged);
        if (!t) {
            Py_DECREF(per);
            return NULL;
        }
        PyList_SET_ITEM(per, i, t);
        u->lines = u->adds = u->merged = 0;
    }
    PyObject *r = Py_BuildValue("(LLLLLN)", (long long)m->instructions, (long long)m->partials,
                                (long long)m->bg_bus_partials, (long long)m->rank_bus_partials,
                                (long long)m->result_bytes, per);
    m->instructions = m->partials = m->bg_bus_partials = m->rank_bus_partials = m->result_bytes = 0;
    return r;
}
