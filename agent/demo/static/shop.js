// A little progressive enhancement; every page also works without JavaScript.
"use strict";

// Add to cart without leaving the product page, and show the new cart count.
function enhanceAddToCart() {
  const form = document.getElementById("add-to-cart-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" },
    });
    if (!response.ok) {
      form.submit(); // let the server render its own error page
      return;
    }
    const cart = await response.json();
    document.getElementById("cart-count").textContent = String(cart.count);
    document.getElementById("added").hidden = false;
  });
}

// Group card digits by four, and only enable Pay once the number is long enough.
function enhanceCardField() {
  const card = document.getElementById("card");
  const pay = document.getElementById("pay");
  if (!card || !pay) return;
  const update = () => {
    const digits = card.value.replace(/\D/g, "").slice(0, 19);
    card.value = digits.replace(/(\d{4})(?=\d)/g, "$1 ");
    pay.disabled = digits.length < 13;
  };
  card.addEventListener("input", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  enhanceAddToCart();
  enhanceCardField();
});
