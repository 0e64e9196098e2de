"""Print the Markdown tables of docs/AUDIT.md from the data itself, so the docs cannot drift.

python docs/gen_audit_tables.py > /tmp/tables.md   # then paste into docs/AUDIT.md
"""

from personaguard.audit.conditions import builtin_conditions
from personaguard.data.catalog import catalog


def main() -> None:
    print("| bank | items | tiers | source | licence |\n|---|---|---|---|---|")
    for b in catalog():
        items = "not fetched" if b.items is None else str(b.items)
        print(f"| `{b.name}` | {items} | {b.tiers} | {b.source} | {b.license} |")
    print()
    for cond in builtin_conditions().values():
        print(f"#### `{cond.id}` ({cond.family})\n\n{cond.description}\n")
        for template in cond.templates:
            print(f"- {template}")
        for k, turn in enumerate(cond.followups, start=1):
            print(f"- follow-up turn {k}:")
            for template in turn:
                print(f"  - {template}")
        print()


if __name__ == "__main__":
    main()
