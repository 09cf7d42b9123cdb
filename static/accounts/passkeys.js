// issue 14: after django-otp-webauthn's script has registered a passkey, reload the passkeys page so the
// list (and the server's message) shows it. A file of our own: the CSP allows no inline script.
document.addEventListener("otp_webauthn.register_complete", () => {
  window.location.reload();
});
