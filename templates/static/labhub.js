// Small enhancements for the hub's pages; every page works without them.
(function () {
  // A token shown once: selected as soon as it gets focus, so it can be copied at once.
  document.querySelectorAll('[data-select-on-focus]').forEach(function (input) {
    input.addEventListener('focus', function () { input.select(); });
    input.focus();
  });
  // Destructive actions ask first.
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (e) {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });
  // A server starting in a list (the admin's users page): its row shows the start's progress, and the list reloads
  // once the start ends, so the admin follows it without leaving the page.
  document.querySelectorAll('a[data-progress-url]').forEach(function (link) {
    const row = link.closest('tr');
    const status = row && row.querySelector('.status');
    const source = new EventSource(link.dataset.progressUrl + '?_xsrf=' + encodeURIComponent(document.body.dataset.xsrf || ''));
    source.onmessage = function (e) {
      const event = JSON.parse(e.data);
      if (status && event.message) status.textContent = 'starting: ' + event.message;
      if (event.ready || event.failed) { source.close(); window.location.reload(); }
    };
  });
  // The sort and search form of a list submits as soon as a choice changes.
  document.querySelectorAll('[data-autosubmit]').forEach(function (control) {
    control.addEventListener('change', function () { control.form.submit(); });
  });
})();
