"""review/domain/ stays pure: no framework, database, queue or AI SDK imports."""

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "review" / "domain"
FORBIDDEN = {
    "flask",
    "flask_login",
    "flask_wtf",
    "flask_htmx",
    "sqlalchemy",
    "alembic",
    "rq",
    "redis",
    "anthropic",
    "models",
    "workers",
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
            if node.module.startswith("review.") and not node.module.startswith("review.domain"):
                roots.add(node.module)
    return roots


def test_domain_modules_import_no_frameworks():
    modules = sorted(DOMAIN.glob("*.py"))
    assert modules, "review/domain has no modules"
    offenders = {
        path.name: sorted(
            imported_roots(path) & FORBIDDEN
            | {m for m in imported_roots(path) if m.startswith("review.")}
        )
        for path in modules
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
