// The card form: Stripe.js Card Element + SetupIntent confirmation.
// Card data goes from this page straight to Stripe (or localstripe in test mode);
// our server only ever sees the SetupIntent's outcome.
window.billingCard = (() => {
  let loading = null;
  let stripe = null;
  let card = null;

  function loadStripeJs(url) {
    if (window.Stripe) return Promise.resolve();
    if (!loading) {
      loading = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = url;
        script.onload = resolve;
        script.onerror = () => { loading = null; reject(new Error("The card form could not be loaded.")); };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  async function waitForElement(selector) {
    // The dialog holding the element may still be opening.
    for (let i = 0; i < 100; i++) {
      const element = document.querySelector(selector);
      if (element) return element;
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    throw new Error("The card form is not on the page.");
  }

  async function mount(stripeJsUrl, publishableKey, selector) {
    try {
      await loadStripeJs(stripeJsUrl);
      const element = await waitForElement(selector);
      if (!stripe) stripe = window.Stripe(publishableKey);
      if (card) card.destroy();
      element.replaceChildren();
      card = stripe.elements().create("card", { hidePostalCode: false });
      card.mount(element);
      return { ok: true };
    } catch (error) {
      return { error: String(error.message || error) };
    }
  }

  async function confirm(clientSecret, name) {
    if (!stripe || !card) return { error: "The card form is not ready yet." };
    try {
      const result = await stripe.confirmCardSetup(clientSecret, {
        payment_method: { card: card, billing_details: { name: name } },
      });
      if (result.error) return { error: result.error.message || "The card could not be saved." };
      return { ok: true };
    } catch (error) {
      return { error: String(error.message || error) };
    }
  }

  return { mount, confirm };
})();
