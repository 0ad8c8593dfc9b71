// LabHub's idle warning inside JupyterLab 4 and Notebook 7 (docs/idle-culling.md): the browser side of labhub_idle.
//
// JupyterLab loads prebuilt extensions as module federation containers: it runs this script, then calls
// window._JUPYTERLAB['labhub-idle'].init(shareScope) and .get('./extension'). The plugin needs nothing from
// JupyterLab's shared modules, so the container is written by hand: no build step and no npm packages in the image.
//
// It asks <base_url>labhub/idle every 30 s (every 10 s while warning), counts down on its own in between, shows a
// banner in the last `warn_before` seconds with "Keep it running" (a POST there, which reports activity to the hub),
// and says so once the server has stopped. Nothing is shown when the hub culls nothing.
(function () {
  'use strict';
  var NAME = 'labhub-idle';
  var POLL_MS = 30000;
  var WARNING_POLL_MS = 10000;

  function pageConfig() {
    var el = document.getElementById('jupyter-config-data');
    try {
      return el ? JSON.parse(el.textContent || '{}') : {};
    } catch {
      return {};
    }
  }

  function xsrfToken() {
    var match = /(?:^|; )_xsrf=([^;]*)/.exec(document.cookie);
    return match ? decodeURIComponent(match[1]) : '';
  }

  function twoDigits(n) {
    return (n < 10 ? '0' : '') + n;
  }

  function element(tag, attributes, text) {
    var el = document.createElement(tag);
    Object.keys(attributes).forEach(function (key) { el.setAttribute(key, attributes[key]); });
    if (text) el.textContent = text;
    return el;
  }

  function banner() {
    var box = element('div', {
      class: 'labhub-idle-warning',
      role: 'region',
      'aria-label': 'Idle warning',
      style: 'position:fixed;top:8px;left:50%;transform:translateX(-50%);z-index:10000;max-width:90vw;' +
        'display:none;gap:12px;align-items:center;padding:8px 14px;border-radius:6px;' +
        'background:#fff4e5;color:#5c3b00;border:1px solid #f0b45c;box-shadow:0 2px 8px rgba(0,0,0,.2);' +
        'font:14px/1.4 system-ui,sans-serif'
    });
    var message = element('span', { class: 'labhub-idle-message' });
    var keep = element('button', {
      type: 'button',
      class: 'labhub-idle-keep',
      style: 'font:inherit;padding:4px 10px;border-radius:4px;border:1px solid #b36b00;background:#fff;color:#5c3b00;cursor:pointer'
    }, 'Keep it running');
    var failed = element('span', { class: 'labhub-idle-failed', role: 'alert' });
    var announce = element('span', { 'aria-live': 'polite', style: 'position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)' });
    box.appendChild(message);
    box.appendChild(keep);
    box.appendChild(failed);
    box.appendChild(announce);
    return { box: box, message: message, keep: keep, failed: failed, announce: announce };
  }

  // The box's own display (flex) would override the `hidden` attribute, so visibility is the display itself.
  function shown(box) {
    return box.style.display !== 'none';
  }

  function show(box, on) {
    box.style.display = on ? 'flex' : 'none';
  }

  function watch() {
    var url = (pageConfig().baseUrl || '/') + 'labhub/idle';
    var ui = banner();
    document.body.appendChild(ui.box);
    var deadline = null;
    var warnMs = 0;
    var stopped = false;
    var poller = 0;

    function warning() {
      return deadline !== null && deadline - Date.now() <= warnMs;
    }

    function render() {
      if (stopped) return;
      if (!warning()) {
        show(ui.box, false);
        return;
      }
      var seconds = Math.ceil(Math.max(0, deadline - Date.now()) / 1000);
      ui.message.textContent = 'This server will be stopped for inactivity in ' +
        Math.floor(seconds / 60) + ':' + twoDigits(seconds % 60) + '.';
      if (!shown(ui.box)) {
        show(ui.box, true);
        // Said once when it appears: a live countdown would be read out every second.
        ui.announce.textContent = 'This server will be stopped for inactivity in about ' + Math.max(1, Math.ceil(seconds / 60)) + ' min.';
      }
    }

    function showStopped() {
      stopped = true;
      window.clearTimeout(poller);
      ui.message.textContent = 'This server has stopped for inactivity. Start it again from the hub to go on working.';
      ui.keep.hidden = true;
      show(ui.box, true);
    }

    function take(state) {
      if (state.seconds_left === null || state.seconds_left === undefined) {
        deadline = null;
        if (shown(ui.box)) showStopped();
      } else {
        deadline = Date.now() + state.seconds_left * 1000;
        warnMs = state.warn_before * 1000;
      }
      render();
    }

    function ask(init) {
      init.credentials = 'same-origin';
      // jupyterhub-singleuser wants the XSRF token on every cookie-authenticated request a script makes, reads too.
      // JSON, so that once the server is gone the hub answers its 424 here instead of a page.
      init.headers = { 'X-XSRFToken': xsrfToken(), Accept: 'application/json' };
      return fetch(url, init).then(function (res) {
        // Without the server side there is nothing to warn about: stop asking.
        if (res.status === 404) {
          stopped = true;
          return null;
        }
        // The server is gone: the proxy has no route for it and the hub says it is not running.
        if (res.status === 424) return { seconds_left: null };
        if (!res.ok) throw new Error('idle state: HTTP ' + res.status);
        return res.json();
      });
    }

    function poll() {
      window.clearTimeout(poller);
      ask({})
        .then(function (state) { if (state) take(state); })
        .catch(function () { /* the last state stands until the next poll */ })
        .then(function () {
          if (!stopped) poller = window.setTimeout(poll, warning() ? WARNING_POLL_MS : POLL_MS);
        });
    }

    ui.keep.addEventListener('click', function () {
      ui.keep.disabled = true;
      ui.failed.textContent = '';
      ask({ method: 'POST' })
        .then(function (state) {
          if (state) take(state);
          ui.announce.textContent = 'The server keeps running.';
        })
        .catch(function () { ui.failed.textContent = 'That did not work; try again.'; })
        .then(function () { ui.keep.disabled = false; });
    });

    window.setInterval(render, 1000);
    poll();
  }

  var plugin = {
    id: NAME + ':banner',
    description: 'Warns before LabHub stops this server for inactivity, with a button to keep it running.',
    autoStart: true,
    activate: function () { watch(); }
  };

  var containers = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  containers[NAME] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== './extension') return Promise.reject(new Error(NAME + ' has no module ' + module));
      return Promise.resolve(function () { return { __esModule: true, default: [plugin] }; });
    }
  };
})();
