// Sign-in: the token comes from the form or from the link's fragment (#token=…), which
// browsers never send to the server, so it stays out of access logs.
"use strict";

async function signIn(token) {
  const response = await fetch("/api/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (response.ok) {
    location.replace("/");
    return;
  }
  const problem = await response.json().catch(() => ({}));
  const error = document.getElementById("login-error");
  error.textContent = problem.detail || `Sign-in failed (HTTP ${response.status}).`;
  error.hidden = false;
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn(event.target.elements.token.value.trim());
});

const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromLink) {
  history.replaceState(null, "", location.pathname);
  signIn(fromLink);
}
