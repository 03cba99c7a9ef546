import importlib.util, numpy as np, time, tempfile, os
spec=importlib.util.spec_from_file_location('ex','examples/text_newsgroups.py'); ex=importlib.util.module_from_spec(spec); spec.loader.exec_module(ex)
raw,groups,names=ex.load_posts(ex.find_data()); texts=[ex.clean(p) for p in raw]
from sklearn.pipeline import make_pipeline
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import Normalizer
from sklearn.cluster import KMeans
from zennit_clusters import explain, neuralize
from exporters.onnx import export
import onnxruntime as ort
pipe=make_pipeline(TfidfVectorizer(min_df=2), TruncatedSVD(20, random_state=0), Normalizer(), KMeans(3, n_init=3, random_state=0)).fit(texts)
m=neuralize(pipe, X=texts)
t=time.time()
with tempfile.TemporaryDirectory() as d:
    r=export(m, os.path.join(d,'m.onnx'), explain=True)
    print(r); 
    s=ort.InferenceSession(os.path.join(d,'m.onnx'))
    print([i.name for i in s.get_inputs()], [o.name for o in s.get_outputs()], s.get_inputs()[0].type)
    X=m.encode(texts).toarray().astype(np.float32)
    out=s.run(None, {'X': X})
    print((out[0]==pipe.predict(texts)).mean(), time.time()-t)
    R=explain(m, texts)
    print(np.abs(out[2]-R.toarray()).max())
