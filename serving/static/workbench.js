/* 质检工作台 (review workbench): a small single-page app over the grader's /v1 API.
 *
 * No framework and no build step: DOM built with h(), charts drawn as inline SVG, routes in
 * the URL hash (#/queue, #/conv/ID, #/search, #/dashboard, #/disputes, #/mine). The API key
 * lives in sessionStorage and goes out as `Authorization: Bearer`. Every text from the API is
 * inserted as text (never as HTML); personal numbers arrive masked and stay so.
 */
(function () {
  'use strict';

  const STORAGE_KEY = 'grader.workbench.key';
  const PAGE_SIZE = 50;
  const NEAR = 0.15; // a probability this close to its threshold is shown as uncertain

  const ROLE_ZH = { admin: '管理员', reviewer: '质检员', agent: '客服', client: '接入方' };
  const SPEAKER_ZH = { agent: '客服', customer: '客户', system: '系统' };
  const KIND_ZH = { required: '必做项', bonus: '加分项', deduction: '扣分项' };
  const SOURCE_ZH = { rule: '规则', model: '模型', condition: '组合' };
  const STATUS_ZH = { open: '待处理', accepted: '已采纳', rejected: '已驳回', partial: '部分采纳' };
  const ACTION_ZH = {
    'grade.machine': '机器评分', 'review.create': '人工复核', 'dispute.open': '发起申诉',
    'dispute.resolve': '处理申诉', 'key.create': '创建密钥', 'key.revoke': '吊销密钥',
  };
  const CHANNEL_ZH = { chat: '在线', call: '通话', email: '邮件' };
  const NAV = {
    reviewer: [['queue', '复核队列'], ['disputes', '申诉处理'], ['search', '话术案例'], ['dashboard', '数据看板']],
    agent: [['mine', '我的质检']],
    client: [],
  };
  NAV.admin = NAV.reviewer;

  const state = { key: null, me: null, seq: 0, conv: { tab: 'items' } };

  // ---------------------------------------------------------------- DOM helpers

  function append(el, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  /** An element: props are attributes, plus class, text, dataset and on<event> handlers. */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    return append(el, kids);
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function fmt(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return '—';
    return String(Math.round(n * 100) / 100);
  }
  const pct = (x) => (x === null || x === undefined ? '—' : `${Math.round(x * 1000) / 10}%`);

  /** "2026-11-19T09:48:30+08:00" as written (the contact centre's local time). */
  function localStamp(iso) {
    return iso ? String(iso).replace('T', ' ').slice(0, 16) : '—';
  }

  /** A server timestamp (UTC) in the browser's time zone. */
  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const p = (x) => String(x).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  function clock(seconds) {
    if (seconds === null || seconds === undefined) return null;
    const s = Math.floor(seconds);
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  }

  // Free text typed by people (reasons) is masked here as well: the service masks transcripts
  // and evidence, and a reviewer may paste a number into a reason.
  function luhn(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i += 1) {
      let d = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) d = d > 4 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return sum % 10 === 0;
  }
  function maskNumbers(text) {
    return String(text ?? '')
      .replace(/(?<![\d*])(\d{6})\d{8}(\d{3}[\dXx])(?![\d*])/g, '$1********$2')
      .replace(/(?<![\d*])\d{13,19}(?![\d*])/g, (m) => (luhn(m) ? m.slice(0, 4) + '*'.repeat(m.length - 8) + m.slice(-4) : m))
      .replace(/(?<![\d*])(1[3-9]\d)\d{4}(\d{4})(?![\d*])/g, '$1****$2');
  }

  function toast(message, kind) {
    const el = $('#toast');
    el.textContent = message;
    el.className = `toast ${kind || ''}`;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 3500);
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, body) {
      const info = (body && body.error) || {};
      super(info.message || `HTTP ${status}`);
      this.status = status;
      this.code = info.code;
      this.field = info.field;
    }
  }

  function errorText(err) {
    if (!(err instanceof ApiError)) return `出错了：${err.message || err}`;
    const prefix = {
      401: '未登录或密钥无效', 403: '当前角色无权执行此操作', 404: '未找到，或当前密钥无权查看',
      409: '操作冲突', 413: '超出限制', 422: '输入有误',
    }[err.status] || `请求失败（${err.status}）`;
    return err.message ? `${prefix}：${err.message}` : prefix;
  }

  function queryString(query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== null && v !== undefined && v !== '') q.set(k, v);
    }
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  async function api(path, options) {
    const { method = 'GET', body, query } = options || {};
    const headers = { Accept: 'application/json', Authorization: `Bearer ${state.key}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path + queryString(query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (res.status === 401 && state.me) {
      logout('登录已失效，请重新输入密钥。');
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // ---------------------------------------------------------------- session

  async function login(key) {
    state.key = key;
    try {
      state.me = await api('v1/me');
    } catch (err) {
      state.key = null;
      state.me = null;
      throw err;
    }
    sessionStorage.setItem(STORAGE_KEY, key);
    showApp();
  }

  function logout(message) {
    sessionStorage.removeItem(STORAGE_KEY);
    state.key = null;
    state.me = null;
    state.seq += 1;
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    showLogin(message);
  }

  function showLogin(message) {
    $('#topbar').hidden = true;
    $('#app').replaceChildren();
    $('#app').hidden = true;
    $('#login').hidden = false;
    $('#login-error').textContent = message || '';
    $('#login-key').value = '';
    $('#login-key').focus();
  }

  function showApp() {
    $('#login').hidden = true;
    $('#app').hidden = false;
    $('#topbar').hidden = false;
    const me = state.me;
    $('#who').replaceChildren(h('span', { class: 'role-badge' }, ROLE_ZH[me.role] || me.role), ' ', h('b', { text: me.name }));
    const nav = $('#nav');
    nav.replaceChildren(...(NAV[me.role] || []).map(([id, label]) => h('a', { href: `#/${id}`, dataset: { nav: id } }, label)));
    render();
  }

  const isReviewer = () => state.me && (state.me.role === 'admin' || state.me.role === 'reviewer');
  const home = () => (isReviewer() ? '/queue' : state.me.role === 'agent' ? '/mine' : '/note');

  function itemInfo(id) {
    for (const dim of state.me.dimensions || []) {
      for (const item of dim.items) if (item.id === id) return { ...item, dimension: dim.label };
    }
    return null;
  }
  function behaviorName(id) {
    const b = (state.me.behaviors || []).find((x) => x.id === id);
    return b ? b.label : id;
  }
  function threshold(id) {
    const b = (state.me.behaviors || []).find((x) => x.id === id);
    return b ? b.threshold : 0.5;
  }
  function itemLabel(id) {
    const info = itemInfo(id);
    return info ? info.label : id;
  }

  // ---------------------------------------------------------------- routing

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const at = raw.indexOf('?');
    return { path: at < 0 ? raw : raw.slice(0, at), params: new URLSearchParams(at < 0 ? '' : raw.slice(at + 1)) };
  }

  function go(path, params) {
    const qs = params ? queryString(params) : '';
    location.hash = `#${path}${qs}`;
  }

  /** Replace the page's content, unless another navigation started since `token`. */
  function mount(token, ...nodes) {
    if (token !== state.seq) return false;
    $('#app').replaceChildren(...nodes);
    return true;
  }

  async function render() {
    if (!state.me) return;
    const token = ++state.seq;
    const { path, params } = parseHash();
    for (const a of $$('#nav a')) a.classList.toggle('active', path.startsWith(`/${a.dataset.nav}`));
    mount(token, h('p', { class: 'loading' }, '加载中…'));
    try {
      const m = path.match(/^\/conv\/(.+)$/);
      if (state.me.role === 'client') return viewClient(token);
      if (m) return await viewConversation(token, decodeURIComponent(m[1]), params);
      if (isReviewer()) {
        if (path === '/queue') return await viewQueue(token, params);
        if (path === '/disputes') return await viewDisputes(token, params);
        if (path === '/search') return await viewSearch(token, params);
        if (path === '/dashboard') return await viewDashboard(token, params);
      } else if (path === '/mine') {
        return await viewMine(token);
      }
      location.replace(`#${home()}`);
    } catch (err) {
      mount(token, h('div', { class: 'page' }, h('p', { class: 'error big', role: 'alert' }, errorText(err))));
    }
    return undefined;
  }

  // ---------------------------------------------------------------- small widgets

  function gradeBadge(grade, redLine) {
    const cls = { 优秀: 'g-a', 良好: 'g-b', 合格: 'g-c', 待改进: 'g-d' }[grade] || 'g-x';
    return h('span', { class: `grade-badge ${cls}` }, grade, redLine ? h('span', { class: 'rl-dot', title: '红线' }, '红线') : null);
  }

  function statusBadge(status) {
    return h('span', { class: `status-badge s-${status}` }, STATUS_ZH[status] || status);
  }

  function field(label, control) {
    return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control);
  }

  function select(name, options, value, props) {
    return h('select', { name, ...(props || {}) },
      options.map(([v, label]) => h('option', { value: v, selected: String(v) === String(value ?? '') }, label)));
  }

  function pager(page, offset, onPage) {
    const start = page.total ? offset + 1 : 0;
    const end = offset + page.items.length;
    return h('div', { class: 'pager' },
      h('span', { class: 'muted' }, `第 ${start}–${end} 条，共 ${page.total} 条`),
      h('button', { type: 'button', class: 'btn small', disabled: offset <= 0, onclick: () => onPage(Math.max(0, offset - PAGE_SIZE)) }, '上一页'),
      h('button', { type: 'button', class: 'btn small', disabled: page.next_offset === null, onclick: () => onPage(page.next_offset) }, '下一页'));
  }

  function formFilters(form) {
    const out = {};
    for (const [k, v] of new FormData(form).entries()) if (v !== '') out[k] = v;
    return out;
  }

  // ---------------------------------------------------------------- 复核队列 (queue)

  async function viewQueue(token, params) {
    const filters = {
      agent_id: params.get('agent_id') || '', team: params.get('team') || '', grade: params.get('grade') || '',
      date_from: params.get('date_from') || '', date_to: params.get('date_to') || '',
      status: params.get('status') || 'todo',
    };
    const offset = Number(params.get('offset') || 0);
    const page = await api('v1/queue', { query: { ...filters, status: filters.status === 'all' ? '' : filters.status, limit: PAGE_SIZE, offset } });
    const facets = page.facets;
    const apply = (extra) => go('/queue', { ...formFilters(form), status: form.status.value, ...(extra || {}) });
    const form = h('form', { class: 'filters', id: 'queue-filters', onsubmit: (e) => { e.preventDefault(); apply(); } },
      field('客服', select('agent_id', [['', '全部客服'], ...facets.agents.map((a) => [a, a])], filters.agent_id)),
      field('团队', select('team', [['', '全部团队'], ...facets.teams.map((t) => [t, t])], filters.team)),
      field('评级', select('grade', [['', '全部评级'], ...facets.grades.map((g) => [g, g])], filters.grade)),
      field('开始日期', h('input', { type: 'date', name: 'date_from', value: filters.date_from })),
      field('结束日期', h('input', { type: 'date', name: 'date_to', value: filters.date_to })),
      field('状态', select('status', [['todo', '待复核'], ['done', '已复核'], ['all', '全部']], filters.status)),
      h('div', { class: 'filter-actions' },
        h('button', { type: 'submit', class: 'btn primary' }, '筛选'),
        h('button', { type: 'button', class: 'btn ghost', onclick: () => go('/queue') }, '重置')));
    for (const el of $$('select, input', form)) el.addEventListener('change', () => apply());

    const rows = page.items.map((r) => {
      const open = () => go(`/conv/${encodeURIComponent(r.id)}`);
      const maxW = 200;
      return h('tr', { class: 'queue-row clickable', dataset: { id: r.id }, onclick: (e) => { if (!e.target.closest('a')) open(); } },
        h('td', { class: 'num' },
          h('div', { class: 'prio' }, h('span', { class: 'prio-num' }, fmt(r.priority)),
            h('span', { class: 'prio-bar' }, h('span', { class: `prio-fill ${r.priority >= 80 ? 'hot' : r.priority >= 20 ? 'warm' : ''}`, dataset: { w: Math.min(100, (r.priority / maxW) * 100) } })))),
        h('td', null, h('a', { href: `#/conv/${encodeURIComponent(r.id)}`, class: 'conv-link' }, r.id)),
        h('td', null, r.agent_id || '—'),
        h('td', null, r.team || '—'),
        h('td', { class: 'nowrap' }, localStamp(r.started_at)),
        h('td', { class: 'num nowrap' }, h('b', null, fmt(r.score)), r.score !== r.machine_score ? h('span', { class: 'muted small' }, ` / 机器 ${fmt(r.machine_score)}`) : null),
        h('td', null, gradeBadge(r.grade, r.red_line)),
        h('td', { class: 'reasons' }, r.reasons.length ? r.reasons.map((x) => h('span', { class: `reason r-${x.code}`, title: x.detail }, x.label)) : h('span', { class: 'muted' }, '—')),
        h('td', { class: 'nowrap' },
          r.open_disputes ? h('span', { class: 'status-badge s-open' }, '申诉中') : r.reviewed ? h('span', { class: 'status-badge s-accepted' }, '已复核') : h('span', { class: 'status-badge s-todo' }, '待复核')));
    });
    const table = h('table', { class: 'grid queue' },
      h('thead', null, h('tr', null, ['优先级', '会话', '客服', '团队', '时间', '分数', '评级', '复核原因', '状态'].map((t) => h('th', null, t)))),
      h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: 9, class: 'empty' }, '没有符合条件的会话。'))));
    const view = h('div', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', null, '复核队列'),
        h('p', { class: 'muted' }, '按复核优先级排序：红线、待处理申诉、模型低置信度（行为概率接近阈值）、评分项临界、分数临近等级线。')),
      form, h('div', { class: 'table-wrap' }, table),
      pager(page, offset, (o) => apply({ offset: o })));
    if (mount(token, view)) {
      for (const el of $$('.prio-fill', view)) el.style.width = `${el.dataset.w}%`;
    }
  }

  // ---------------------------------------------------------------- 会话详情 (conversation)

  /** Evidence by turn: [{start, end, cls, label, target}] from items and red lines. */
  function evidenceByTurn(grade) {
    const out = new Map();
    const add = (turn, entry) => { if (!out.has(turn)) out.set(turn, []); out.get(turn).push(entry); };
    for (const item of grade.items || []) {
      if (!item.applicable && item.applicable !== undefined) continue;
      const cls = item.passed ? 'pass' : 'fail';
      for (const ev of item.evidence || []) {
        add(ev.turn, { start: ev.start, end: ev.end, cls, label: item.label, target: { tab: 'items', id: item.id } });
      }
    }
    for (const rl of grade.red_lines || []) {
      for (const ev of rl.evidence || []) {
        add(ev.turn, { start: ev.start, end: ev.end, cls: 'red', label: `红线：${shortLabel(rl.label)}`, target: { tab: 'verdict', id: rl.id } });
      }
    }
    return out;
  }

  const SEVERITY = { pass: 1, fail: 2, red: 3 };

  /** 泄露客户个人信息（完整手机号…） -> 泄露客户个人信息 */
  function shortLabel(label) {
    return String(label).split('（')[0].split('(')[0].trim() || label;
  }

  /** The turn's text with evidence spans wrapped in <mark>. */
  function highlighted(text, spans) {
    const marks = spans.filter((s) => Number.isInteger(s.start) && Number.isInteger(s.end))
      .map((s) => ({ ...s, start: Math.max(0, Math.min(text.length, s.start)), end: Math.max(0, Math.min(text.length, s.end)) }))
      .filter((s) => s.end > s.start);
    if (!marks.length) return [text];
    const cuts = Array.from(new Set([0, text.length, ...marks.flatMap((s) => [s.start, s.end])])).sort((a, b) => a - b);
    const parts = [];
    for (let i = 0; i < cuts.length - 1; i += 1) {
      const [a, b] = [cuts[i], cuts[i + 1]];
      const over = marks.filter((s) => s.start <= a && s.end >= b);
      const piece = text.slice(a, b);
      if (!over.length) { parts.push(piece); continue; }
      const top = over.reduce((x, y) => (SEVERITY[y.cls] > SEVERITY[x.cls] ? y : x));
      parts.push(h('mark', { class: `ev ${top.cls}`, title: over.map((s) => s.label).join('；') }, piece));
    }
    return parts;
  }

  function behaviorChips(turn, machineTurn) {
    const chips = [];
    const eff = new Set(turn.behaviors);
    const mach = new Set(machineTurn ? machineTurn.behaviors : turn.behaviors);
    const scores = (machineTurn || turn).scores || {};
    for (const b of (state.me.behaviors || []).map((x) => x.id)) {
      const p = scores[b] ?? 0;
      const t = threshold(b);
      const near = Math.abs(p - t) <= NEAR;
      let cls = null;
      let note = '';
      if (eff.has(b) && !mach.has(b)) { cls = 'chip human-add'; note = '（人工添加）'; }
      else if (!eff.has(b) && mach.has(b)) { cls = 'chip human-del'; note = '（人工移除）'; }
      else if (eff.has(b)) cls = `chip on${near ? ' near' : ''}${b === 'impolite' || b === 'shirking' ? ' bad' : ''}`;
      else if (near) { cls = 'chip off near'; note = '（未达阈值）'; }
      if (!cls) continue;
      chips.push(h('span', { class: cls, dataset: { behavior: b }, title: `${behaviorName(b)} ${b}：概率 ${p.toFixed(2)}，阈值 ${t.toFixed(2)}${note}` },
        behaviorName(b), h('span', { class: 'prob' }, p.toFixed(2))));
    }
    return chips;
  }

  /** The reason that every review form requires; null (with the message shown) when it is empty. */
  function requiredReason(form, message) {
    const reason = form.reason.value.trim();
    if (!reason) { form.querySelector('.form-error').textContent = message; form.reason.focus(); return null; }
    return reason;
  }

  /** The end every review form shares: the reason box, the error line, submit (and cancel). */
  function reasonFields(placeholder, submitLabel, cancel) {
    return [
      h('textarea', { name: 'reason', rows: 2, placeholder, required: true }),
      h('p', { class: 'form-error', role: 'alert' }),
      h('div', { class: 'form-actions' },
        h('button', { type: 'submit', class: 'btn primary small' }, submitLabel),
        cancel ? h('button', { type: 'button', class: 'btn ghost small', onclick: cancel }, '取消') : null),
    ];
  }

  function labelEditor(conv, turn, done) {
    const current = new Set(turn.behaviors);
    const form = h('form', { class: 'inline-form label-form', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const reason = requiredReason(form, '请填写改判理由。');
      if (reason === null) return;
      const behaviors = $$('input[type=checkbox]:checked', form).map((c) => c.value);
      await submit(form, () => api(`v1/conversations/${encodeURIComponent(conv.id)}/reviews`,
        { method: 'POST', body: { reason, turns: [{ index: turn.index, behaviors }] } }), '行为标签已改判');
    } },
    h('div', { class: 'checks' }, (state.me.behaviors || []).map((b) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: b.id, checked: current.has(b.id) }), b.label))),
    reasonFields('改判理由（必填），例如：这一轮有道歉安抚', '提交改判', done));
    return form;
  }

  function chatTurn(conv, index, turn, evidence) {
    const speaker = turn.speaker;
    const eff = (conv.effective_grade.turns || []).find((t) => t.index === index);
    const mach = (conv.machine_grade.turns || []).find((t) => t.index === index);
    const spans = evidence.get(index) || [];
    const whole = spans.filter((s) => !Number.isInteger(s.start));
    const level = spans.reduce((acc, s) => Math.max(acc, SEVERITY[s.cls]), 0);
    const ring = ['', ' ev-pass', ' ev-fail', ' ev-red'][level];
    const tags = spans.length ? h('div', { class: 'ev-tags' }, Array.from(new Map(spans.map((s) => [s.label, s])).values()).map((s) =>
      h('button', { type: 'button', class: `ev-tag ${s.cls}`, title: '在右侧查看', onclick: () => focusTarget(s.target) },
        s.cls === 'pass' ? '✓ ' : s.cls === 'red' ? '⚠ ' : '✗ ', s.label))) : null;
    const body = h('div', { class: `bubble${ring}${whole.length ? ' whole' : ''}` },
      turn.text ? highlighted(turn.text, spans) : h('span', { class: 'muted' }, '（无文字内容）'));
    const node = h('div', { class: `turn ${speaker}`, id: `turn-${index}`, dataset: { turn: index } },
      h('div', { class: 'turn-meta' }, `#${index} ${SPEAKER_ZH[speaker] || speaker}`, clock(turn.start) ? ` · ${clock(turn.start)}` : ''),
      body, tags);
    if (speaker === 'agent' && eff) {
      const chips = h('div', { class: 'chips' }, behaviorChips(eff, mach));
      if (!chips.childNodes.length) chips.append(h('span', { class: 'muted small' }, '无行为标签'));
      node.append(chips);
      if (isReviewer()) {
        const slot = h('div', { class: 'editor-slot' });
        const btn = h('button', { type: 'button', class: 'btn link small relabel', onclick: () => {
          if (slot.firstChild) { slot.replaceChildren(); return; }
          slot.replaceChildren(labelEditor(conv, eff, () => slot.replaceChildren()));
          slot.querySelector('textarea').focus();
        } }, '改行为标签');
        node.append(btn, slot);
      }
    }
    return node;
  }

  function focusTarget(target) {
    setTab(target.tab);
    const el = $(`[data-target="${CSS.escape(`${target.tab}:${target.id}`)}"]`);
    if (el) { el.scrollIntoView({ block: 'center' }); flash(el); }
  }

  function focusTurn(index) {
    const el = document.getElementById(`turn-${index}`);
    if (el) { el.scrollIntoView({ block: 'center' }); flash(el); }
  }

  function flash(el) {
    el.classList.remove('flash');
    void el.offsetWidth; // restart the animation
    el.classList.add('flash');
  }

  async function submit(form, call, done, nextTab) {
    const button = form.querySelector('button[type=submit]');
    const error = form.querySelector('.form-error');
    button.disabled = true;
    error.textContent = '';
    try {
      await call();
      if (nextTab) state.conv.tab = nextTab;
      toast(done, 'ok');
      await reloadConversation();
    } catch (err) {
      error.textContent = errorText(err);
      button.disabled = false;
    }
  }

  function scoreCard(id, title, summary) {
    return h('div', { class: `score-card${summary.red_line ? ' red' : ''}`, id },
      h('div', { class: 'score-title' }, title),
      h('div', { class: 'score-line' }, h('span', { class: 'score-value' }, fmt(summary.score)), h('span', { class: 'score-unit' }, '分')),
      gradeBadge(summary.grade, summary.red_line));
  }

  function overrideForm(conv, item, done) {
    const info = itemInfo(item.id) || { points: item.max_points };
    const cap = info.points;
    const form = h('form', { class: 'inline-form override-form', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const reason = requiredReason(form, '请填写改判理由。');
      if (reason === null) return;
      const errorEl = form.querySelector('.form-error');
      const override = { id: item.id, passed: form.passed.value === 'true' };
      if (form.points.value !== '') {
        const points = Number(form.points.value);
        if (!(points >= 0 && points <= cap)) { errorEl.textContent = `分数应在 0 到 ${fmt(cap)} 之间。`; return; }
        override.points = points;
      }
      await submit(form, () => api(`v1/conversations/${encodeURIComponent(conv.id)}/reviews`,
        { method: 'POST', body: { reason, items: [override] } }), `已改判：${item.label}`);
    } },
    h('div', { class: 'radio-row' },
      h('label', null, h('input', { type: 'radio', name: 'passed', value: 'true', checked: !item.passed }), ' 判为通过'),
      h('label', null, h('input', { type: 'radio', name: 'passed', value: 'false', checked: item.passed }), ' 判为不通过'),
      h('label', { class: 'points' }, '得分 ', h('input', { type: 'number', name: 'points', min: 0, max: cap, step: 0.5, placeholder: '自动' }), ` / ${fmt(cap)}`)),
    reasonFields('改判理由（必填），将记入审计日志', '提交改判', done));
    return form;
  }

  function disputeForm(conv, item, done) {
    const form = h('form', { class: 'inline-form dispute-form', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const reason = requiredReason(form, '请填写申诉理由。');
      if (reason === null) return;
      await submit(form, () => api(`v1/conversations/${encodeURIComponent(conv.id)}/disputes`,
        { method: 'POST', body: { item: item.id, reason } }), '申诉已提交，等待质检员处理', 'disputes');
    } },
    reasonFields('申诉理由（必填），例如：第 9 轮已确认问题解决', '提交申诉', done));
    return form;
  }

  function itemPoints(item) {
    if (item.kind === 'bonus') return `+${fmt(item.points)}`;
    return `${fmt(item.points)} / ${fmt(item.max_points)}`;
  }

  function itemRow(conv, item, machineItem, openDisputes) {
    const changed = machineItem && (machineItem.passed !== item.passed || machineItem.points !== item.points);
    const status = !item.applicable ? ['na', '不适用'] : item.passed ? ['pass', '通过'] : ['fail', '未通过'];
    const slot = h('div', { class: 'editor-slot' });
    const toggle = (make) => () => {
      if (slot.firstChild) { slot.replaceChildren(); return; }
      slot.replaceChildren(make(conv, item, () => slot.replaceChildren()));
      slot.querySelector('textarea').focus();
    };
    const actions = [];
    if (isReviewer()) {
      actions.push(h('button', { type: 'button', class: 'btn small override', onclick: toggle(overrideForm) }, '改判'));
    } else if (state.me.role === 'agent' && item.applicable && !item.passed) {
      actions.push(openDisputes.has(item.id)
        ? h('span', { class: 'status-badge s-open' }, '申诉中')
        : h('button', { type: 'button', class: 'btn small dispute', onclick: toggle(disputeForm) }, '申诉'));
    }
    const evidence = (item.evidence || []).map((ev) => ev.turn);
    return h('div', { class: `item ${status[0]}${changed ? ' changed' : ''}`, dataset: { item: item.id, target: `items:${item.id}` } },
      h('div', { class: 'item-head' },
        h('span', { class: `badge ${status[0]}` }, status[1]),
        h('span', { class: 'item-label' }, item.label),
        h('span', { class: 'kind' }, KIND_ZH[item.kind] || item.kind, ' · ', SOURCE_ZH[item.source] || item.source),
        h('span', { class: 'pts' }, itemPoints(item)),
        changed ? h('span', { class: 'machine-was', title: '机器原判' }, `机器：${machineItem.passed ? '通过' : '未通过'} ${itemPoints(machineItem)}`) : null,
        h('span', { class: 'item-actions' }, actions)),
      h('div', { class: 'item-reason' }, maskNumbers(item.reason)),
      evidence.length ? h('div', { class: 'ev-links' }, '证据：', Array.from(new Set(evidence)).map((t) =>
        h('button', { type: 'button', class: 'btn link small', onclick: () => focusTurn(t) }, `第${t}轮`))) : null,
      slot);
  }

  function itemsPanel(conv) {
    const eff = conv.effective_grade;
    const machineItems = new Map((conv.machine_grade.items || []).map((i) => [i.id, i]));
    const machineDims = new Map((conv.machine_grade.dimensions || []).map((d) => [d.id, d]));
    const effDims = new Map((eff.dimensions || []).map((d) => [d.id, d]));
    const openDisputes = new Set(conv.disputes.filter((d) => d.status === 'open').map((d) => d.item));
    const dims = (state.me.dimensions || []).map((d) => d.id);
    for (const it of eff.items) if (!dims.includes(it.dimension)) dims.push(it.dimension);
    return dims.map((dimId) => {
      const items = eff.items.filter((i) => i.dimension === dimId);
      if (!items.length) return null;
      const info = (state.me.dimensions || []).find((d) => d.id === dimId) || { label: dimId, weight: null };
      const e = effDims.get(dimId);
      const m = machineDims.get(dimId);
      return h('section', { class: 'dimension', dataset: { dimension: dimId } },
        h('h3', null, h('span', null, info.label),
          h('span', { class: 'dim-score' },
            e ? `${fmt(e.score)} / ${fmt(e.weight)}` : '不计分',
            m && e && m.score !== e.score ? h('span', { class: 'machine-was' }, `机器 ${fmt(m.score)}`) : null)),
        items.map((i) => itemRow(conv, i, machineItems.get(i.id), openDisputes)));
    });
  }

  function verdictPanel(conv) {
    const eff = conv.effective_grade;
    const mach = conv.machine_grade;
    const fired = eff.red_lines || [];
    const cleared = (mach.red_lines || []).filter((r) => !fired.some((f) => f.id === r.id));
    const list = h('div', { class: 'redlines' },
      fired.length ? fired.map((rl) => h('div', { class: 'redline', dataset: { target: `verdict:${rl.id}` } },
        h('div', { class: 'item-head' }, h('span', { class: 'badge red' }, '红线'), h('span', { class: 'item-label' }, rl.label)),
        h('div', { class: 'item-reason' }, maskNumbers(rl.reason)),
        (rl.evidence || []).length ? h('div', { class: 'ev-links' }, '证据：', rl.evidence.map((ev) =>
          h('button', { type: 'button', class: 'btn link small', onclick: () => focusTurn(ev.turn) }, `第${ev.turn}轮`))) : null))
        : h('p', { class: 'muted' }, '未触发红线（一票否决）。'),
      cleared.map((rl) => h('div', { class: 'redline cleared', dataset: { target: `verdict:${rl.id}` } },
        h('div', { class: 'item-head' }, h('span', { class: 'badge na' }, '已撤销'), h('span', { class: 'item-label' }, rl.label)),
        h('div', { class: 'item-reason' }, '机器判定的红线已被人工复核撤销。'))));
    const notes = conv.effective_grade.notes || [];
    const noteList = notes.length ? h('div', { class: 'grade-notes' }, h('h3', null, '评分备注'),
      h('ul', null, notes.map((n) => h('li', { class: 'muted small' }, maskNumbers(n))))) : null;
    if (!isReviewer()) return [list, noteList];
    const form = h('form', { class: 'inline-form verdict-form', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const reason = requiredReason(form, '请填写理由。');
      if (reason === null) return;
      const errorEl = form.querySelector('.form-error');
      const body = { reason };
      if (form.red_line.value !== '') body.red_line = form.red_line.value === 'true';
      if (form.score.value !== '') {
        const score = Number(form.score.value);
        if (!(score >= 0 && score <= 100)) { errorEl.textContent = '总分应在 0 到 100 之间。'; return; }
        body.score = score;
      }
      await submit(form, () => api(`v1/conversations/${encodeURIComponent(conv.id)}/reviews`, { method: 'POST', body }), '整体判定已提交');
    } },
    h('h3', null, '整体判定'),
    h('div', { class: 'radio-row' },
      field('红线', select('red_line', [['', '不改变'], ['true', '判定为红线'], ['false', '撤销红线']], '')),
      field('总分', h('input', { type: 'number', name: 'score', min: 0, max: 100, step: 0.5, placeholder: '不改变' }))),
    reasonFields('理由（必填）；只填理由即为“确认机器结果”', '提交'));
    return [list, form, noteList];
  }

  function describeReview(r) {
    const parts = [];
    for (const it of r.items || []) {
      const bits = [];
      if (it.passed !== undefined && it.passed !== null) bits.push(it.passed ? '通过' : '不通过');
      if (it.points !== undefined && it.points !== null) bits.push(`${fmt(it.points)} 分`);
      parts.push(`${itemLabel(it.id)} → ${bits.join('，')}`);
    }
    for (const t of r.turns || []) parts.push(`第${t.index}轮标签 → ${t.behaviors.map(behaviorName).join('、') || '无'}`);
    if (r.red_line !== null && r.red_line !== undefined) parts.push(r.red_line ? '判定红线' : '撤销红线');
    if (r.score !== null && r.score !== undefined) parts.push(`总分 → ${fmt(r.score)}`);
    return parts.length ? parts.join('；') : '确认机器结果';
  }

  function reviewsPanel(conv) {
    if (!conv.reviews.length) return h('p', { class: 'muted' }, '尚无人工复核。');
    return h('ol', { class: 'history' }, conv.reviews.slice().reverse().map((r) => h('li', { class: 'review-row' },
      h('div', { class: 'hist-head' }, h('b', null, r.reviewer), h('span', { class: 'muted' }, when(r.created_at)),
        h('span', { class: 'tag' }, r.source === 'dispute' ? `申诉 #${r.dispute_id} 处理` : '人工复核')),
      h('div', null, describeReview(r)),
      h('div', { class: 'muted' }, '理由：', maskNumbers(r.reason)))));
  }

  function resolveForm(dispute) {
    const info = itemInfo(dispute.item);
    const form = h('form', { class: 'inline-form resolve-form', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const reason = requiredReason(form, '请填写处理理由。');
      if (reason === null) return;
      const errorEl = form.querySelector('.form-error');
      const body = { decision: form.decision.value, reason };
      if (body.decision === 'partial') {
        if (form.points.value === '') { errorEl.textContent = '部分采纳需要填写给予的分数。'; return; }
        body.points = Number(form.points.value);
      }
      await submit(form, () => api(`v1/disputes/${dispute.id}/resolve`, { method: 'POST', body }), '申诉已处理');
    } },
    h('div', { class: 'radio-row' },
      field('处理结果', select('decision', [['accepted', '采纳（该项判为通过）'], ['partial', '部分采纳（给予部分分数）'], ['rejected', '驳回（维持原判）']], 'accepted')),
      field('给予分数', h('input', { type: 'number', name: 'points', min: 0, max: info ? info.points : null, step: 0.5, placeholder: info ? `0–${fmt(info.points)}` : '' }))),
    reasonFields('处理理由（必填），会反馈给客服', '提交处理'));
    return form;
  }

  function disputesPanel(conv) {
    if (!conv.disputes.length) {
      return h('p', { class: 'muted' }, state.me.role === 'agent' ? '尚无申诉。对评分有异议时，在“评分项”中点击未通过项的“申诉”。' : '尚无申诉。');
    }
    return h('ol', { class: 'history' }, conv.disputes.slice().reverse().map((d) => {
      const res = d.resolution;
      return h('li', { class: 'dispute-row', dataset: { id: d.id, status: d.status } },
        h('div', { class: 'hist-head' }, h('b', null, `#${d.id} ${itemLabel(d.item)}`), statusBadge(d.status),
          h('span', { class: 'muted' }, `${d.filed_by} · ${when(d.created_at)}`)),
        h('div', null, '申诉理由：', maskNumbers(d.reason)),
        res ? h('div', { class: 'resolution' }, `${d.resolver} 于 ${when(d.resolved_at)} ${STATUS_ZH[d.status] || d.status}`,
          res.points !== undefined && res.points !== null ? `，给予 ${fmt(res.points)} 分` : '', '：', maskNumbers(res.reason)) : null,
        d.status === 'open' && isReviewer() ? resolveForm(d) : null);
    }));
  }

  function change(before, after) {
    if (!before || !after || before.score === undefined || after.score === undefined) return null;
    if (before.score === after.score && before.grade === after.grade) return `分数不变（${fmt(after.score)} · ${after.grade}）`;
    return `分数 ${fmt(before.score)} → ${fmt(after.score)}，评级 ${before.grade} → ${after.grade}`;
  }

  function describeAudit(a) {
    const after = a.after || {};
    if (a.action === 'grade.machine') return `机器评分 ${fmt(after.score)} 分 · ${after.grade}${after.red_line ? ' · 红线' : ''}`;
    if (a.action === 'dispute.open') return `对「${itemLabel(after.item)}」发起申诉`;
    if (a.action === 'dispute.resolve') {
      return [`${STATUS_ZH[after.status] || after.status}`, change(a.before, a.after)].filter(Boolean).join('；');
    }
    if (a.action === 'review.create') {
      const items = Object.entries(after.items || {}).map(([id, v]) => {
        const was = (a.before && a.before.items && a.before.items[id]) || {};
        return `${itemLabel(id)} ${was.passed ? '通过' : '未通过'}(${fmt(was.points)}) → ${v && v.passed ? '通过' : '未通过'}(${fmt(v && v.points)})`;
      });
      const turns = Object.entries(after.turns || {}).map(([i, b]) => `第${i}轮标签 → ${(b || []).map(behaviorName).join('、') || '无'}`);
      return [...items, ...turns, change(a.before, a.after)].filter(Boolean).join('；');
    }
    return a.object_type;
  }

  function auditPanel(conv) {
    return h('table', { class: 'grid audit' },
      h('thead', null, h('tr', null, ['时间', '操作人', '操作', '变化', '理由'].map((t) => h('th', null, t)))),
      h('tbody', null, conv.audit.slice().reverse().map((a) => h('tr', { class: 'audit-row', dataset: { action: a.action } },
        h('td', { class: 'nowrap' }, when(a.at)),
        h('td', { class: 'nowrap' }, a.actor, h('div', { class: 'muted small' }, ROLE_ZH[a.role] || a.role || '')),
        h('td', { class: 'nowrap' }, ACTION_ZH[a.action] || a.action),
        h('td', null, describeAudit(a)),
        h('td', null, maskNumbers(a.why || ''))))));
  }

  function setTab(tab) {
    state.conv.tab = tab;
    for (const b of $$('.tabs .tab')) b.classList.toggle('active', b.dataset.tab === tab);
    for (const p of $$('.tab-panel')) p.hidden = p.dataset.panel !== tab;
  }

  function conversationView(conv) {
    const t = conv.transcript;
    const evidence = evidenceByTurn(conv.effective_grade);
    const back = isReviewer() ? ['#/queue', '← 复核队列'] : ['#/mine', '← 我的质检'];
    const openCount = conv.disputes.filter((d) => d.status === 'open').length;
    const tabs = [
      ['items', '评分项'], ['verdict', `红线与总分${(conv.effective_grade.red_lines || []).length ? ` (${conv.effective_grade.red_lines.length})` : ''}`],
      ['reviews', `复核记录 (${conv.reviews.length})`], ['disputes', `申诉 (${conv.disputes.length}${openCount ? `，${openCount} 待处理` : ''})`],
      ['audit', `审计日志 (${conv.audit.length})`],
    ];
    const panels = {
      items: itemsPanel(conv), verdict: verdictPanel(conv), reviews: reviewsPanel(conv),
      disputes: disputesPanel(conv), audit: auditPanel(conv),
    };
    return h('div', { class: 'conv', dataset: { id: conv.id } },
      h('div', { class: 'conv-head' },
        h('div', { class: 'conv-title' },
          h('a', { href: back[0], class: 'back' }, back[1]),
          h('h1', null, conv.id),
          h('div', { class: 'muted meta-line' },
            [`客服 ${conv.agent_id || '—'}`, conv.team ? `团队 ${conv.team}` : null, localStamp(conv.started_at),
              t.channel ? (CHANNEL_ZH[t.channel] || t.channel) : null, `${t.turns.length} 轮`].filter(Boolean).join(' · ')),
          null),
        h('div', { class: 'score-cards' },
          scoreCard('score-machine', '机器评分', conv.scores.machine),
          h('span', { class: 'arrow' }, '→'),
          scoreCard('score-effective', conv.reviews.length ? '生效评分（含人工复核）' : '生效评分', conv.scores.effective))),
      h('div', { class: 'conv-body' },
        h('section', { class: 'chat', 'aria-label': '对话记录' },
          h('div', { class: 'legend muted small' },
            h('span', { class: 'chip on' }, '行为', h('span', { class: 'prob' }, '概率')), ' 已判定 ',
            h('span', { class: 'chip off near' }, '行为', h('span', { class: 'prob' }, '概率')), ' 接近阈值未判定 ',
            h('mark', { class: 'ev pass' }, '得分证据'), ' ', h('mark', { class: 'ev fail' }, '失分证据'), ' ', h('mark', { class: 'ev red' }, '红线证据')),
          t.turns.map((turn, i) => chatTurn(conv, i, turn, evidence))),
        h('section', { class: 'side' },
          h('div', { class: 'tabs', role: 'tablist' }, tabs.map(([id, label]) =>
            h('button', { type: 'button', role: 'tab', class: `tab${state.conv.tab === id ? ' active' : ''}`, dataset: { tab: id }, onclick: () => setTab(id) }, label))),
          Object.entries(panels).map(([id, content]) => h('div', { class: 'tab-panel', dataset: { panel: id }, hidden: state.conv.tab !== id }, content)))));
  }

  async function viewConversation(token, id, params) {
    if (state.conv.id !== id) state.conv = { id, tab: params.get('tab') || 'items' };
    else if (params.get('tab')) state.conv.tab = params.get('tab');
    const conv = await api(`v1/conversations/${encodeURIComponent(id)}`);
    const redLines = conv.effective_grade.red_lines || [];
    const firstVisit = state.conv.fresh !== false;
    if (firstVisit && !params.get('tab') && redLines.length) state.conv.tab = 'verdict';
    state.conv.fresh = false;
    if (!mount(token, conversationView(conv))) return;
    const turn = params.get('turn');
    const redTurn = redLines.flatMap((r) => (r.evidence || []).map((e) => e.turn))[0];
    if (turn !== null) focusTurn(Number(turn));
    else if (firstVisit && redTurn !== undefined) {
      const el = document.getElementById(`turn-${redTurn}`);
      if (el) el.scrollIntoView({ block: 'center' });
    }
  }

  /** Re-read the open conversation after a change, keeping the tab and the scroll positions. */
  async function reloadConversation() {
    const chat = $('.chat');
    const side = $('.side');
    const scroll = [chat ? chat.scrollTop : 0, side ? side.scrollTop : 0];
    const token = state.seq;
    const conv = await api(`v1/conversations/${encodeURIComponent(state.conv.id)}`);
    if (!mount(token, conversationView(conv))) return; // the user has moved on
    if ($('.chat')) $('.chat').scrollTop = scroll[0];
    if ($('.side')) $('.side').scrollTop = scroll[1];
  }

  // ---------------------------------------------------------------- 申诉处理 (disputes)

  async function viewDisputes(token, params) {
    const status = params.get('status') || 'open';
    const offset = Number(params.get('offset') || 0);
    const page = await api('v1/disputes', { query: { status: status === 'all' ? '' : status, limit: PAGE_SIZE, offset } });
    const view = h('div', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', null, '申诉处理'), h('p', { class: 'muted' }, '客服对评分项的申诉。打开会话，在“申诉”页签中采纳、部分采纳或驳回。')),
      h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
        field('状态', select('status', [['open', '待处理'], ['accepted', '已采纳'], ['partial', '部分采纳'], ['rejected', '已驳回'], ['all', '全部']], status,
          { onchange: (e) => go('/disputes', { status: e.target.value }) }))),
      h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
        h('thead', null, h('tr', null, ['编号', '会话', '评分项', '申诉人', '时间', '理由', '状态', ''].map((t) => h('th', null, t)))),
        h('tbody', null, page.items.length ? page.items.map((d) => h('tr', { class: 'dispute-line', dataset: { id: d.id } },
          h('td', null, `#${d.id}`),
          h('td', null, h('a', { href: `#/conv/${encodeURIComponent(d.conversation_id)}?tab=disputes` }, d.conversation_id)),
          h('td', null, itemLabel(d.item)), h('td', null, d.filed_by), h('td', { class: 'nowrap' }, when(d.created_at)),
          h('td', null, maskNumbers(d.reason)), h('td', null, statusBadge(d.status)),
          h('td', null, h('a', { class: 'btn small', href: `#/conv/${encodeURIComponent(d.conversation_id)}?tab=disputes` }, d.status === 'open' ? '去处理' : '查看'))))
          : h('tr', null, h('td', { colspan: 8, class: 'empty' }, '没有申诉。'))))),
      pager(page, offset, (o) => go('/disputes', { status, offset: o })));
    mount(token, view);
  }

  // ---------------------------------------------------------------- 话术案例搜索 (coaching search)

  async function viewSearch(token, params) {
    const keys = ['behavior', 'missing', 'item_failed', 'red_line', 'score_min', 'score_max', 'agent_id', 'team', 'date_from', 'date_to'];
    const filters = Object.fromEntries(keys.map((k) => [k, params.get(k) || '']));
    const offset = Number(params.get('offset') || 0);
    const searched = keys.some((k) => filters[k] !== '') || params.has('all');
    const [facets, page] = await Promise.all([
      api('v1/facets'),
      searched ? api('v1/examples', { query: { ...filters, limit: PAGE_SIZE, offset } }) : Promise.resolve(null),
    ]);
    const behaviors = (state.me.behaviors || []).map((b) => [b.id, b.label]);
    const itemSelect = h('select', { name: 'item_failed' }, h('option', { value: '' }, '不限'),
      (state.me.dimensions || []).map((d) => h('optgroup', { label: d.label }, d.items.map((i) =>
        h('option', { value: i.id, selected: i.id === filters.item_failed }, i.label)))));
    const form = h('form', { class: 'filters search', id: 'search-form', onsubmit: (e) => {
      e.preventDefault();
      const f = formFilters(form);
      go('/search', Object.keys(f).length ? f : { all: 1 });
    } },
    field('包含行为', select('behavior', [['', '不限'], ...behaviors], filters.behavior)),
    field('缺少行为', select('missing', [['', '不限'], ...behaviors], filters.missing)),
    field('未通过评分项', itemSelect),
    field('红线', select('red_line', [['', '不限'], ['true', '触发红线'], ['false', '无红线']], filters.red_line)),
    field('最低分', h('input', { type: 'number', name: 'score_min', min: 0, max: 100, value: filters.score_min, class: 'short' })),
    field('最高分', h('input', { type: 'number', name: 'score_max', min: 0, max: 100, value: filters.score_max, class: 'short' })),
    field('客服', select('agent_id', [['', '全部'], ...facets.agents.map((a) => [a, a])], filters.agent_id)),
    field('团队', select('team', [['', '全部'], ...facets.teams.map((t) => [t, t])], filters.team)),
    field('开始日期', h('input', { type: 'date', name: 'date_from', value: filters.date_from })),
    field('结束日期', h('input', { type: 'date', name: 'date_to', value: filters.date_to })),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'btn primary' }, '搜索'),
      h('button', { type: 'button', class: 'btn ghost', onclick: () => go('/search') }, '清空')));
    let results;
    if (!page) {
      results = h('p', { class: 'muted hint' }, '选择条件后搜索，例如：包含“共情安抚”的客服话术（优秀示范），或“结果确认”未通过的会话（培训素材）。');
    } else {
      const f = { ...filters };
      results = [
        h('div', { class: 'result-count' }, `找到 ${page.total} 条`),
        h('ol', { class: 'hits' }, page.items.map((hit) => {
          const link = `#/conv/${encodeURIComponent(hit.conversation_id)}${hit.turn !== null ? `?turn=${hit.turn}` : ''}`;
          const ctx = (hit.context || []);
          const before = ctx.filter((c) => c.index < hit.turn);
          const after = ctx.filter((c) => c.index > hit.turn);
          const line = (c, cls) => h('div', { class: `ctx ${c.speaker} ${cls || ''}` }, h('span', { class: 'who' }, SPEAKER_ZH[c.speaker] || c.speaker || ''), c.text);
          return h('li', { class: 'hit' },
            h('div', { class: 'hit-head' },
              h('a', { href: link, class: 'conv-link' }, hit.conversation_id, hit.turn !== null ? ` · 第${hit.turn}轮` : ' · 整段会话'),
              gradeBadge(hit.grade, hit.red_line), h('span', { class: 'muted' }, `${fmt(hit.score)} 分 · ${hit.agent_id || '—'} · ${hit.team || '—'} · ${localStamp(hit.started_at)}`)),
            hit.turn !== null ? h('div', { class: 'hit-body' }, before.map((c) => line(c)),
              h('div', { class: `ctx ${hit.speaker} main` }, h('span', { class: 'who' }, SPEAKER_ZH[hit.speaker] || ''), hit.text),
              after.map((c) => line(c))) : null,
            hit.behaviors && hit.behaviors.length ? h('div', { class: 'chips' }, hit.behaviors.map((b) =>
              h('span', { class: `chip on${b === f.behavior ? ' match' : ''}` }, behaviorName(b)))) : null);
        })),
        pager(page, offset, (o) => go('/search', { ...formFilters(form), offset: o })),
      ];
    }
    mount(token, h('div', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', null, '话术案例搜索'), h('p', { class: 'muted' }, '按行为、失分项、红线、分数、客服、团队与日期查找对话片段，点击进入会话。')),
      form, h('div', { class: 'results' }, results)));
  }

  // ---------------------------------------------------------------- 数据看板 (dashboard)

  const CHART_FONT = 12;

  /** Grouped vertical bars: groups [{label, values: [..]}], series [{name, cls}]. */
  function columnChart(name, groups, series, opts) {
    const W = 560; const H = 230; const L = 36; const B = 42; const T = 12;
    const max = Math.max(1, ...groups.flatMap((g) => g.values));
    const step = niceStep(max);
    const top = Math.ceil(max / step) * step;
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const gw = (W - L - 8) / groups.length;
    const bw = Math.min(26, (gw - 8) / series.length);
    const grid = [];
    for (let v = 0; v <= top; v += step) {
      grid.push(svg('line', { x1: L, x2: W - 4, y1: y(v), y2: y(v), class: 'gridline' }),
        svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, String(v)));
    }
    const bars = groups.map((g, gi) => {
      const x0 = L + gi * gw + (gw - bw * series.length) / 2;
      return [g.values.map((v, si) => svg('rect', {
        x: x0 + si * bw, y: y(v), width: Math.max(1, bw - 2), height: Math.max(0, y(0) - y(v)), class: `bar col ${series[si].cls}`,
      }, svg('title', null, `${g.label} ${series[si].name}：${v}`))),
      svg('text', { x: L + gi * gw + gw / 2, y: H - B + 16, 'text-anchor': 'middle', class: 'axis' }, g.label)];
    });
    const legend = series.map((s, i) => [
      svg('rect', { x: L + i * 110, y: H - 14, width: 12, height: 12, class: `bar swatch ${s.cls}` }),
      svg('text', { x: L + i * 110 + 17, y: H - 4, class: 'axis' }, s.name)]);
    return svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-chart': name, role: 'img', 'font-size': CHART_FONT }, grid, bars, legend);
  }

  /** Horizontal bars: rows [{label, value, max, text, marker?, cls?}]. */
  function barList(name, rows, opts) {
    const W = 560; const rowH = 26; const L = (opts && opts.labelWidth) || 150; const R = 96;
    const H = Math.max(rowH, rows.length * rowH) + 6;
    const width = W - L - R;
    const els = rows.map((r, i) => {
      const yy = 4 + i * rowH;
      const frac = r.max ? Math.max(0, Math.min(1, r.value / r.max)) : 0;
      return [
        svg('text', { x: L - 8, y: yy + 16, 'text-anchor': 'end', class: 'label' }, r.label),
        svg('rect', { x: L, y: yy + 4, width, height: rowH - 10, class: 'track' }),
        svg('rect', { x: L, y: yy + 4, width: Math.max(1, width * frac), height: rowH - 10, class: `bar ${r.cls || 'eff'}` },
          svg('title', null, `${r.label}：${r.text}`)),
        r.marker !== undefined && r.marker !== null
          ? svg('line', { x1: L + width * Math.min(1, r.marker / r.max), x2: L + width * Math.min(1, r.marker / r.max), y1: yy + 1, y2: yy + rowH - 3, class: 'marker' },
            svg('title', null, opts && opts.markerName ? `${opts.markerName}：${fmt(r.marker)}` : fmt(r.marker)))
          : null,
        svg('text', { x: L + width + 8, y: yy + 16, class: 'value' }, r.text)];
    });
    return svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-chart': name, role: 'img', 'font-size': CHART_FONT }, els);
  }

  function niceStep(max) {
    const raw = max / 4;
    const mag = 10 ** Math.floor(Math.log10(raw || 1));
    const norm = raw / mag;
    return Math.max(1, (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag);
  }

  function card(title, subtitle, body, cls) {
    return h('section', { class: `card ${cls || ''}` }, h('h2', null, title, subtitle ? h('span', { class: 'muted small' }, subtitle) : null), body);
  }

  function kpi(label, value, sub) {
    return h('div', { class: 'kpi' }, h('div', { class: 'kpi-label' }, label), h('div', { class: 'kpi-value' }, value), sub ? h('div', { class: 'kpi-sub muted' }, sub) : null);
  }

  async function viewDashboard(token, params) {
    const filters = { agent_id: params.get('agent_id') || '', team: params.get('team') || '', date_from: params.get('date_from') || '', date_to: params.get('date_to') || '' };
    const [ov, agreement, facets] = await Promise.all([
      api('v1/stats/overview', { query: filters }),
      api('v1/stats/agreement', { query: filters }),
      api('v1/facets'),
    ]);
    const form = h('form', { class: 'filters', id: 'dashboard-filters', onsubmit: (e) => { e.preventDefault(); go('/dashboard', formFilters(form)); } },
      field('客服', select('agent_id', [['', '全部客服'], ...facets.agents.map((a) => [a, a])], filters.agent_id)),
      field('团队', select('team', [['', '全部团队'], ...facets.teams.map((t) => [t, t])], filters.team)),
      field('开始日期', h('input', { type: 'date', name: 'date_from', value: filters.date_from })),
      field('结束日期', h('input', { type: 'date', name: 'date_to', value: filters.date_to })),
      h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'btn primary' }, '应用'),
        h('button', { type: 'button', class: 'btn ghost', onclick: () => go('/dashboard') }, '重置')));
    for (const el of $$('select, input', form)) el.addEventListener('change', () => go('/dashboard', formFilters(form)));

    const hist = ov.histogram.effective.map((b, i) => ({
      label: `${b.low}–${b.high}`, values: [b.count, ov.histogram.machine[i].count],
    }));
    const both = [{ name: '生效（含复核）', cls: 'eff' }, { name: '机器', cls: 'mach' }];
    const failed = ov.failed_items.slice(0, 8);
    const agents = ov.agents;
    const itemsAgreement = agreement.items.filter((x) => x.n > 0);
    const behaviorsAgreement = agreement.behaviors.filter((x) => x.n > 0);
    const agreeRows = (rows, label) => rows.slice().sort((a, b) => (a.agreement ?? 1) - (b.agreement ?? 1) || b.n - a.n).map((x) => ({
      label: label(x.id), value: x.agreement || 0, max: 1, text: `${pct(x.agreement)}${x.kappa === null ? '' : ` · κ ${fmt(x.kappa)}`}`,
      cls: (x.agreement || 0) >= 0.9 ? 'good' : (x.agreement || 0) >= 0.75 ? 'eff' : 'warn',
    }));
    const view = h('div', { class: 'page dashboard' },
      h('div', { class: 'page-head' }, h('h1', null, '数据看板'), h('p', { class: 'muted' }, '基于生效评分（机器评分叠加人工复核与申诉结果）；机器评分作为对照。')),
      form,
      h('div', { class: 'kpis' },
        kpi('会话数', String(ov.total)),
        kpi('平均分', fmt(ov.mean_score), `机器 ${fmt(ov.mean_machine_score)}`),
        kpi('红线会话', String(ov.red_line), ov.total ? `占 ${pct(ov.red_line / ov.total)}` : null),
        kpi('已人工复核', String(ov.reviewed), ov.total ? `占 ${pct(ov.reviewed / ov.total)}` : null),
        kpi('机审一致率', agreement.reviewed_conversations ? pct(avgAgreement(itemsAgreement)) : '—', `基于 ${agreement.reviewed_conversations} 个复核会话`)),
      h('div', { class: 'cards' },
        card('分数分布', '（每 10 分一档）', columnChart('histogram', hist, both)),
        card('评级分布', null, columnChart('grades', ov.grades.map((g) => ({ label: g.grade, values: [g.count, g.machine] })), both)),
        card('高频失分项', `（前 ${failed.length} 项，按会话数）`, failed.length ? barList('failed-items', failed.map((f) => ({
          label: f.label, value: f.count, max: ov.total, text: `${f.count} 次 · ${pct(f.rate)}`, cls: 'warn',
        }))) : h('p', { class: 'muted' }, '没有失分项。')),
        card('客服平均分', '（条：生效平均分；竖线：机器平均分）', agents.length ? barList('agents', agents.map((a) => ({
          label: `${a.agent_id || '未知'}${a.team ? ` · ${a.team}` : ''}`, value: a.mean_score, max: 100, marker: a.mean_machine_score,
          text: `${fmt(a.mean_score)} 分 · ${a.n} 通`, cls: a.mean_score >= 80 ? 'good' : a.mean_score >= 60 ? 'eff' : 'warn',
        })), { markerName: '机器平均分', labelWidth: 120 }) : h('p', { class: 'muted' }, '没有数据。')),
        card('机审与人审一致性 · 评分项', `（${agreement.reviewed_conversations} 个已复核会话；κ 为 Cohen's kappa）`,
          itemsAgreement.length ? barList('agreement-items', agreeRows(itemsAgreement, itemLabel), { labelWidth: 150 })
            : h('p', { class: 'muted' }, '暂无人工复核数据：复核会话后，这里显示机器判定与人工判定的一致率。')),
        card('机审与人审一致性 · 行为标签', '（按客服轮次）',
          behaviorsAgreement.length ? barList('agreement-behaviors', agreeRows(behaviorsAgreement, behaviorName), { labelWidth: 130 })
            : h('p', { class: 'muted' }, '暂无人工复核数据。'))));
    mount(token, view);
  }

  function avgAgreement(rows) {
    const n = rows.reduce((s, r) => s + r.n, 0);
    return n ? rows.reduce((s, r) => s + (r.agreement || 0) * r.n, 0) / n : null;
  }

  // ---------------------------------------------------------------- 我的质检 (agent)

  async function viewMine(token) {
    const [convs, disputes] = await Promise.all([
      api('v1/conversations', { query: { limit: 1000 } }), api('v1/disputes', { query: { limit: 1000 } }),
    ]);
    const items = convs.items;
    const mean = items.length ? items.reduce((s, c) => s + c.score, 0) / items.length : null;
    const view = h('div', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', null, '我的质检'),
        h('p', { class: 'muted' }, '你的会话评分与申诉。对某个评分项有异议时，打开会话，在未通过的评分项上点击“申诉”。')),
      h('div', { class: 'kpis' },
        kpi('会话数', String(convs.total)), kpi('平均分', fmt(mean)),
        kpi('红线', String(items.filter((c) => c.red_line).length)),
        kpi('待处理申诉', String(disputes.items.filter((d) => d.status === 'open').length))),
      h('h2', { class: 'section-title' }, '我的会话'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'grid mine' },
        h('thead', null, h('tr', null, ['会话', '时间', '团队', '分数', '评级', '状态', ''].map((t) => h('th', null, t)))),
        h('tbody', null, items.length ? items.map((c) => h('tr', { class: 'mine-row clickable', dataset: { id: c.id }, onclick: (e) => { if (!e.target.closest('a')) go(`/conv/${encodeURIComponent(c.id)}`); } },
          h('td', null, h('a', { href: `#/conv/${encodeURIComponent(c.id)}`, class: 'conv-link' }, c.id)),
          h('td', { class: 'nowrap' }, localStamp(c.started_at)), h('td', null, c.team || '—'),
          h('td', { class: 'num' }, h('b', null, fmt(c.score))), h('td', null, gradeBadge(c.grade, c.red_line)),
          h('td', null, c.reviewed ? h('span', { class: 'status-badge s-accepted' }, '已复核') : h('span', { class: 'muted' }, '机器评分')),
          h('td', null, h('a', { class: 'btn small', href: `#/conv/${encodeURIComponent(c.id)}?tab=items` }, '查看评分 / 申诉'))))
          : h('tr', null, h('td', { colspan: 7, class: 'empty' }, '暂无会话。'))))),
      h('h2', { class: 'section-title' }, '我的申诉'),
      disputes.items.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
        h('thead', null, h('tr', null, ['编号', '会话', '评分项', '理由', '状态', '处理意见'].map((t) => h('th', null, t)))),
        h('tbody', null, disputes.items.slice().reverse().map((d) => h('tr', { class: 'my-dispute', dataset: { id: d.id } },
          h('td', null, `#${d.id}`), h('td', null, h('a', { href: `#/conv/${encodeURIComponent(d.conversation_id)}?tab=disputes` }, d.conversation_id)),
          h('td', null, itemLabel(d.item)), h('td', null, maskNumbers(d.reason)), h('td', null, statusBadge(d.status)),
          h('td', null, d.resolution ? maskNumbers(d.resolution.reason) : '—'))))))
        : h('p', { class: 'muted' }, '暂无申诉。'));
    mount(token, view);
  }

  // ---------------------------------------------------------------- client keys

  function viewClient(token) {
    mount(token, h('div', { class: 'page narrow' }, h('div', { class: 'notice client-note' },
      h('h1', null, '此密钥不能使用工作台'),
      h('p', null, `当前登录的是接入方（client）密钥「${state.me.name}」。接入方密钥用于通过 API 提交质检（POST /v1/grade、/v1/jobs）并读取结果。`),
      h('p', null, '复核队列、会话详情、话术案例和数据看板只对质检员、管理员和客服开放。请改用相应的密钥登录。'),
      h('p', null, h('a', { href: 'docs' }, 'API 文档')))));
  }

  // ---------------------------------------------------------------- start

  function start() {
    $('#login-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const key = $('#login-key').value.trim();
      const error = $('#login-error');
      if (!key) { error.textContent = '请输入 API 密钥。'; return; }
      const button = $('#login-submit');
      button.disabled = true;
      error.textContent = '';
      try {
        await login(key);
      } catch (err) {
        error.textContent = err instanceof ApiError && err.status === 401 ? '密钥无效或已吊销。' : errorText(err);
      } finally {
        button.disabled = false;
      }
    });
    $('#logout').addEventListener('click', () => logout(''));
    window.addEventListener('hashchange', () => render());
    const saved = sessionStorage.getItem(STORAGE_KEY);
    if (!saved) { showLogin(''); return; }
    login(saved).catch(() => logout('登录已失效，请重新输入密钥。'));
  }

  document.addEventListener('DOMContentLoaded', start);
}());
