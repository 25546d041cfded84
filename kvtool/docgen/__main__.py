"""`python -m kvtool.docgen`: rewrite the generated docs (see kvtool.docgen.files)."""

import sys

from kvtool.docgen.files import main

sys.exit(main())
