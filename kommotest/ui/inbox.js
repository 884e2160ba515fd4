// kommotest inbox: refreshes the chat list and the open chat once a second
// and sends the forms without reloading the page. No build step.
(function () {
  "use strict";
  var chat = document.body.dataset.chat || "";
  var chats = document.getElementById("chats");
  var messages = document.getElementById("messages");
  var flash = document.getElementById("flash");
  var last = "";

  function refresh() {
    fetch("/_kommotest/ui/live?chat=" + encodeURIComponent(chat), {cache: "no-store"})
      .then(function (r) { return r.text(); })
      .then(function (html) {
        if (html === last) { return; }
        last = html;
        var doc = new DOMParser().parseFromString(html, "text/html");
        chats.innerHTML = doc.querySelector("nav").innerHTML;
        if (messages) { messages.innerHTML = doc.querySelector("ol").innerHTML; }
      })
      .catch(function () {});
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var button = e.submitter;
    var action = (button && button.getAttribute("formaction")) || form.getAttribute("action");
    var data = new URLSearchParams(new FormData(form, button));
    e.preventDefault();
    fetch(action, {method: "POST", body: data, headers: {"X-Inbox-Fetch": "1"}})
      .then(function (r) { return r.text(); })
      .then(function (msg) {
        flash.textContent = msg;
        flash.hidden = msg === "";
        if (form.id === "composer" && action.endsWith("/reply")) { form.elements.text.value = ""; }
        refresh();
      });
  });

  setInterval(refresh, 1000);
})();
