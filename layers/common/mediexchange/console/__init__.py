"""The console: server-rendered pages for the portal's operators and the clinics' integrators (issue 13).

`pages` is the plumbing every page uses (templates, language, prefix-aware links, CSRF, HTML answers);
`auth` signs people in; `clinics`, `receipts`, `board`, `orders` and `admin` are the pages themselves.
"""
