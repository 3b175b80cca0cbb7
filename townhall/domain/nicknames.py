"""Agent nicknames (display names). Upstream ships a list of 200 popular 1920s US boys' names then 200
girls' names in src/agent.rs; that exact list is not available to us, so this is our own list of the
same shape (names popular in the 1920s per US birth records). The *index* derivation matches
upstream, so a stored nickname may differ from the one upstream would pick for the same UUID —
harmless, since the nickname is written into the record at creation and read back from there.
"""

from __future__ import annotations

_BOYS_1920S = """
    Robert John James William Charles George Joseph Richard Edward Donald Thomas Frank Harold Paul
    Raymond Walter Jack Henry Kenneth Arthur Albert David Harry Eugene Ralph Howard Carl Willie
    Louis Clarence Earl Roy Fred Joe Francis Lawrence Herbert Leonard Ernest Alfred Anthony Stanley
    Norman Gerald Daniel Samuel Bernard Billy Melvin Marvin Warren Michael Leroy Russell Leo Andrew
    Edwin Elmer Peter Floyd Lloyd Ray Frederick Theodore Clifford Vernon Herman Clyde Chester Philip
    Alvin Lester Wayne Vincent Gordon Leon Lewis Charlie Glenn Calvin Martin Milton Lee Jesse Dale
    Cecil Bill Harvey Roger Victor Benjamin Wallace Ted Edgar Allen Manuel Lyle Jerome Gene Jimmie
    Johnnie Sam Sidney Everett Oscar Morris Willard Leslie Marion Wilbur Curtis Irving Virgil Jerry
    Jim Max Hubert Tom Homer Maurice Luther Alex Steve Nicholas Dean Glen Bobby Jose Douglas
    Franklin Arnold Edmund Otis Claude Hugh Ben Dennis Jacob Roland Wesley Wilbert Lowell Stephen
    Willis Horace Emil Orville Julius Nathan Karl Julian Guy Lynn Earnest Aaron Tony Dan Harley
    Rudolph Alton Ira Delbert Ervin Wilfred Bert Rex Ellis Sherman Jay Dewey Matthew Archie Grover
    Irvin Patrick Juan Roscoe Alexander Merle Mack Felix Kermit Jimmy Johnny Austin Eddie Allan
    Leland Troy Forrest Conrad Morton Emmett Elbert Ronald Louie Frankie Mario Lonnie Carroll
""".split()

_GIRLS_1920S = """
    Mary Dorothy Helen Betty Margaret Ruth Virginia Doris Mildred Frances Elizabeth Evelyn Anna
    Marie Alice Jean Shirley Barbara Irene Marjorie Florence Lois Martha Rose Lillian Louise
    Catherine Ruby Eleanor Patricia Gladys Annie Josephine Thelma Edna Norma Pauline Lucille Edith
    Ethel Phyllis Hazel Gloria Grace Juanita Bernice Geraldine Beatrice Clara Esther Emma Joan
    Lorraine Elsie Jane Joyce Gertrude Marian Wilma Agnes Peggy Bertha Ann Vera Pearl Jessie Loretta
    Eva Genevieve Marion Kathryn Laura Nancy Ida Viola Arlene Vivian Audrey Jeanne Willie Rita
    Stella Charlotte Katherine Ella Caroline Lucy Minnie Sarah Eileen Maxine Bessie Myrtle Leona
    Alma Violet Harriet Nellie Mabel Georgia Marilyn Lola Opal Rosemary Wanda Mae Christine Margie
    Maria Geneva Sylvia Rosie Hilda Inez Lorene Rosa Muriel Nora Jeanette Mattie Fern Dolores Ellen
    Betsy Regina Hattie Alberta Eunice Anne Carolyn Sally Verna Constance Lena Sophie Harriett
    Blanche Winifred Maggie Donna Velma Carrie Dora Kathleen Beulah Ada Claire Mamie Olive Carol
    Imogene Erma Bettie Flora Cora Iris Maude Eula Goldie Roberta Lula Naomi Tillie Billie Mable
    Della Laverne Rachel Leah Cecilia Gwendolyn Nina Miriam Ina Colleen Janet Bonnie Lottie Effie
    Estelle Amelia Lila Ola Sue Henrietta Faye Essie Ollie Claudia Letha Nadine Lydia Ramona Jewel
    Daisy Katie Rosalie Marguerite Theresa Josie
""".split()

NICKNAMES: tuple[str, ...] = tuple(_BOYS_1920S + _GIRLS_1920S)
assert len(_BOYS_1920S) == 200 and len(_GIRLS_1920S) == 200
