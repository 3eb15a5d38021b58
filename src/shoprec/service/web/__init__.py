"""HTML for the dashboard (:mod:`shoprec.service.dashboard`): page shell, SVG charts and the pages."""
