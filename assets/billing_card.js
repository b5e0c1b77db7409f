// The card form and the bank's payment confirmation, through Stripe.js.
// Card data goes from this page straight to Stripe (or the emulator in test mode);
// our server only ever sees the outcome of a SetupIntent or a PaymentIntent.
// Every answer is {ok: true} or {error: "<short message>"}: no raw JavaScript error
// reaches the user (details go to the console).
window.billingCard = (() => {
  let loading = null;
  let stripe = null;
  let card = null;
  let mountedIn = null;

  function loadStripeJs(url) {
    if (window.Stripe) return Promise.resolve();
    if (!loading) {
      loading = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = url;
        script.onload = resolve;
        script.onerror = () => { loading = null; reject(new Error("Stripe.js could not be loaded")); };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  async function stripeFor(stripeJsUrl, publishableKey) {
    await loadStripeJs(stripeJsUrl);
    if (!stripe) stripe = window.Stripe(publishableKey);
    return stripe;
  }

  async function waitForElement(selector) {
    // The dialog holding the element may still be opening.
    for (let i = 0; i < 100; i++) {
      const element = document.querySelector(selector);
      if (element) return element;
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    throw new Error("no element " + selector);
  }

  // Marks a message for the catalogue (`make messages`); the page shows it translated.
  const N_ = (text) => text;

  function failure(message, error) {
    if (error) console.warn("billingCard:", error);
    return { error: message };
  }

  function stripeMessage(result, fallback) {
    const message = result && result.error && result.error.message;
    return typeof message === "string" && message.length < 300 ? message : fallback;
  }

  async function mount(stripeJsUrl, publishableKey, selector) {
    try {
      const element = await waitForElement(selector);
      const instance = await stripeFor(stripeJsUrl, publishableKey);
      // One card element per opened form: a second mount would empty what was typed.
      if (card && mountedIn === element && element.isConnected && element.firstChild) return { ok: true };
      if (card) card.destroy();
      element.replaceChildren();
      // Stripe's own texts (placeholders, its card errors) in the tab's language.
      card = instance
        .elements({ locale: document.documentElement.lang || "auto" })
        .create("card", { hidePostalCode: false });
      card.mount(element);
      mountedIn = element;
      return { ok: true };
    } catch (error) {
      return failure(N_("The card form could not be loaded. Please try again."), error);
    }
  }

  async function confirm(clientSecret, name) {
    if (!stripe || !card) return failure(N_("The card form is not ready yet. Please wait a moment."));
    try {
      const result = await stripe.confirmCardSetup(clientSecret, {
        payment_method: { card: card, billing_details: { name: name } },
      });
      if (result.error) return failure(stripeMessage(result, N_("The card could not be saved.")), result.error);
      return { ok: true };
    } catch (error) {
      // e.g. the emulator's card element before anything was typed into it
      return failure(N_("Please enter the card number, expiry date and CVC."), error);
    }
  }

  // Confirms an invoice's payment (its confirmation secret): the bank may show its
  // 3-D Secure challenge. `paymentMethod` (a pm_ id) pays with that card.
  async function confirmPayment(stripeJsUrl, publishableKey, clientSecret, paymentMethod) {
    try {
      const instance = await stripeFor(stripeJsUrl, publishableKey);
      const data = paymentMethod ? { payment_method: paymentMethod } : undefined;
      const result = await instance.confirmCardPayment(clientSecret, data);
      if (result.error) {
        return failure(stripeMessage(result, N_("The payment was not confirmed.")), result.error);
      }
      return { ok: true, status: result.paymentIntent && result.paymentIntent.status };
    } catch (error) {
      return failure(N_("The payment could not be confirmed. Please try again."), error);
    }
  }

  return { mount, confirm, confirmPayment };
})();
