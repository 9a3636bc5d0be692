// Mayak's pages in Azerbaijani and English: the words, and numbers/dates in the chosen
// language's format (Intl). Loaded before each page's script; exposes window.I18N.
(() => {
  const WORDS = {
    en: {
      title: "Mayak — product analytics", site: "Site", token: "API token", save: "Save",
      period: "Period", today: "Today", yesterday: "Yesterday", "7d": "7 days", "30d": "30 days",
      month: "This month", lastmonth: "Last month", "12mo": "12 months", custom: "Custom",
      compare: "Compare with previous period", from: "from", to: "to", filters: "Filters",
      visitors: "Visitors", visits: "Visits", pageviews: "Pageviews",
      views_per_visit: "Views per visit", bounce_rate: "Bounce rate",
      visit_duration: "Visit duration", previous: "previous period", live: "now",
      live_visitors: "visitors in the last 5 minutes", reading: "Being read now",
      main: "Visitors", pages: "Pages", top: "Top", entry: "Entry", exit: "Exit",
      sections: "Sections", sources: "Channels and sources", channel: "Channels",
      source: "Sources", referrer_domain: "Referrers", utm_source: "UTM source",
      utm_medium: "UTM medium", utm_campaign: "UTM campaign", places: "Countries and ISPs",
      country: "Countries", isp: "ISPs", devices: "Devices and software",
      device_type: "Device types", browser: "Browsers", browser_version: "Browser versions",
      os: "Operating systems", os_version: "OS versions", events: "Goals and custom events",
      event_name: "Custom events", prop: "Break down by prop", outbound: "Outbound links",
      services: "Service requests", heat: "Hour of day × weekday (Baku time)",
      funnel: "Funnel", funnel_steps: "Steps, one per line: page:/path* or event:name",
      show: "Show", csv: "CSV", archive: "Download the whole view (ZIP)",
      time_on_page: "time on page", scroll_depth: "scroll", section_seconds: "dwell",
      service_requests: "requests", count: "events", goals: "Goals",
      conversions: "conversions", conversion_rate: "rate", from_first: "of first step", none: "(none)",
      empty: "No data in this period. Choose a longer period, or check that the beacon is on the site.",
      need_token: "Paste an API token with the product role (create one: mayak token add --name NAME --role product).",
      forbidden: "This token's role may not see the product page: use a product or admin token.",
      unknown_site: "Unknown site.", unavailable: "Not available in this version.",
      weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], pp: "pp",
    },
    az: {
      title: "Mayak — məhsul analitikası", site: "Sayt", token: "API tokeni", save: "Yadda saxla",
      period: "Dövr", today: "Bu gün", yesterday: "Dünən", "7d": "7 gün", "30d": "30 gün",
      month: "Bu ay", lastmonth: "Keçən ay", "12mo": "12 ay", custom: "Seçilmiş",
      compare: "Əvvəlki dövrlə müqayisə", from: "başlanğıc", to: "son", filters: "Filtrlər",
      visitors: "Ziyarətçilər", visits: "Səfərlər", pageviews: "Səhifə baxışları",
      views_per_visit: "Səfər başına baxış", bounce_rate: "İmtina nisbəti",
      visit_duration: "Səfər müddəti", previous: "əvvəlki dövr", live: "indi",
      live_visitors: "son 5 dəqiqədə ziyarətçi", reading: "İndi oxunur",
      main: "Ziyarətçilər", pages: "Səhifələr", top: "Ən çox", entry: "Giriş", exit: "Çıxış",
      sections: "Bölmələr", sources: "Kanallar və mənbələr", channel: "Kanallar",
      source: "Mənbələr", referrer_domain: "Yönləndirənlər", utm_source: "UTM mənbə",
      utm_medium: "UTM vasitə", utm_campaign: "UTM kampaniya", places: "Ölkələr və provayderlər",
      country: "Ölkələr", isp: "Provayderlər", devices: "Cihazlar və proqramlar",
      device_type: "Cihaz növləri", browser: "Brauzerlər", browser_version: "Brauzer versiyaları",
      os: "Əməliyyat sistemləri", os_version: "ƏS versiyaları", events: "Məqsədlər və hadisələr",
      event_name: "Hadisələr", prop: "Xassəyə görə böl", outbound: "Xarici keçidlər",
      services: "Xidmət müraciətləri", heat: "Günün saatı × həftənin günü (Bakı vaxtı)",
      funnel: "Huni", funnel_steps: "Addımlar, hər sətirdə bir: page:/yol* və ya event:ad",
      show: "Göstər", csv: "CSV", archive: "Bütün görünüşü yüklə (ZIP)",
      time_on_page: "səhifədə vaxt", scroll_depth: "sürüşdürmə", section_seconds: "müddət",
      service_requests: "müraciət", count: "hadisə", goals: "Məqsədlər",
      conversions: "konversiya", conversion_rate: "nisbət", from_first: "ilk addımdan", none: "(yoxdur)",
      empty: "Bu dövrdə məlumat yoxdur. Daha uzun dövr seçin və ya saytda mayakın olduğunu yoxlayın.",
      need_token: "Məhsul rolu olan API tokenini daxil edin (yaratmaq: mayak token add --name AD --role product).",
      forbidden: "Bu tokenin rolu məhsul səhifəsini görə bilməz: product və ya admin tokeni istifadə edin.",
      unknown_site: "Naməlum sayt.", unavailable: "Bu versiyada yoxdur.",
      weekdays: ["B.e", "Ç.a", "Ç", "C.a", "C", "Ş", "B"], pp: "f.b.",
    },
  };
  const LOCALES = {en: "en-GB", az: "az-Latn-AZ"};
  const TZ = "Asia/Baku";
  let lang = "en";
  const I18N = {
    get lang() { return lang; },
    set(l) { lang = WORDS[l] ? l : "en"; document.documentElement.lang = lang; },
    t: (key) => WORDS[lang][key] ?? WORDS.en[key] ?? key,
    number: (n, digits = 0) => n == null ? "—" : new Intl.NumberFormat(LOCALES[lang],
      {maximumFractionDigits: digits}).format(n),
    percent: (f, digits = 1) => f == null ? "—" : new Intl.NumberFormat(LOCALES[lang],
      {style: "percent", maximumFractionDigits: digits}).format(f),
    duration: (s) => s == null ? "—" :
      `${Math.floor(Math.round(s) / 60)}:${String(Math.round(s) % 60).padStart(2, "0")}`,
    date: (iso) => new Intl.DateTimeFormat(LOCALES[lang], {day: "numeric", month: "short",
      year: "numeric", timeZone: "UTC"}).format(new Date(iso + "T00:00:00Z")),
    hour: (iso) => new Intl.DateTimeFormat(LOCALES[lang], {day: "numeric", month: "short",
      hour: "2-digit", minute: "2-digit", timeZone: TZ}).format(new Date(iso)),
    tick: (seconds, hourly) => new Intl.DateTimeFormat(LOCALES[lang], hourly
      ? {day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: TZ}
      : {day: "numeric", month: "short", timeZone: TZ}).format(new Date(seconds * 1000)),
    TZ,
  };
  window.I18N = I18N;
})();
