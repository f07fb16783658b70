# SPDX-License-Identifier: Apache-2.0
import os
import sys

# the package from the tree, not an installed copy
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "python"))
