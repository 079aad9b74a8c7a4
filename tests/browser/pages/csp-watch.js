"use strict";
// Loaded first on every test page: it keeps each Content-Security-Policy violation, so that a
// test can assert there was none.
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
