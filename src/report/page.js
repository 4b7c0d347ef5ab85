// Tooltips for every element with a data-tip (shown as text, never HTML),
// a time cursor shared by the charts, and a data-ready mark for tests.
(function () {
  try {
    var tip = document.getElementById('tip');
    document.addEventListener('mousemove', function (e) {
      var el = e.target && e.target.closest ? e.target.closest('[data-tip]') : null;
      if (!el) { tip.hidden = true; return; }
      tip.textContent = el.getAttribute('data-tip');
      tip.hidden = false;
      var r = tip.getBoundingClientRect();
      var x = e.clientX + 14, y = e.clientY + 16;
      if (x + r.width > window.innerWidth - 8) x = e.clientX - r.width - 14;
      if (y + r.height > window.innerHeight - 8) y = e.clientY - r.height - 12;
      tip.style.left = Math.max(4, x) + 'px';
      tip.style.top = Math.max(4, y) + 'px';
    });
    document.addEventListener('mouseleave', function () { tip.hidden = true; });

    // A time cursor: hovering one chart marks the same moment in all.
    var NS = 'http://www.w3.org/2000/svg';
    var charts = [].slice.call(document.querySelectorAll('svg.time'));
    var span = function (svg) {
      var d = svg.dataset;
      return { s: +d.start, e: +d.end, x0: +d.x0, x1: +d.x1 };
    };
    var show = function (t, hovered) {
      charts.forEach(function (svg) {
        var m = span(svg), c = svg.__cursor;
        if (t === null || t < m.s || t > m.e) {
          c.line.style.display = 'none'; c.text.style.display = 'none'; return;
        }
        var x = m.x0 + (t - m.s) / Math.max(1, m.e - m.s) * (m.x1 - m.x0);
        c.line.setAttribute('x1', x); c.line.setAttribute('x2', x);
        c.line.style.display = '';
        c.text.style.display = svg === hovered ? '' : 'none';
        c.text.setAttribute('x', x + 4);
        c.text.textContent = (t / 1e9).toFixed(3) + ' s';
      });
    };
    charts.forEach(function (svg) {
      var h = svg.viewBox.baseVal.height;
      var line = document.createElementNS(NS, 'line');
      line.setAttribute('class', 'cursor');
      line.setAttribute('y1', 0); line.setAttribute('y2', h - 20);
      var text = document.createElementNS(NS, 'text');
      text.setAttribute('class', 'cursor-label'); text.setAttribute('y', 10);
      svg.appendChild(line); svg.appendChild(text);
      svg.__cursor = { line: line, text: text };
      svg.addEventListener('mousemove', function (e) {
        var m = span(svg), r = svg.getBoundingClientRect();
        var x = (e.clientX - r.left) * svg.viewBox.baseVal.width / r.width;
        if (x < m.x0 || x > m.x1) { show(null); return; }
        show(m.s + (x - m.x0) / (m.x1 - m.x0) * (m.e - m.s), svg);
      });
      svg.addEventListener('mouseleave', function () { show(null); });
    });
    show(null);

    var ready = [];
    ['timeline', 'leadership', 'latency', 'throughput'].forEach(function (id) {
      var svg = document.querySelector('#' + id + ' svg');
      if (svg && svg.childElementCount > 0) ready.push(id);
    });
    document.body.setAttribute('data-ready', ready.join(' '));
  } catch (err) {
    window.__errors.push(String(err));
    var out = document.getElementById('script-errors');
    out.textContent = window.__errors.join('\n');
    out.hidden = false;
  }
})();
