// Stands in for https://www.googletagmanager.com/gtag/js: marks that it was loaded.
window.gtagLoaded = (window.gtagLoaded || 0) + 1;
