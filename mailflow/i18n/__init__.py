"""Languages: the translation catalogs, which language and time zone each reader gets, the
language a mail is written in, and dates, durations and greetings as each language says them."""
