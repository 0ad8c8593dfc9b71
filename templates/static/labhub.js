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
  // The sort and search form of a list submits as soon as a choice changes.
  document.querySelectorAll('[data-autosubmit]').forEach(function (control) {
    control.addEventListener('change', function () { control.form.submit(); });
  });
})();
